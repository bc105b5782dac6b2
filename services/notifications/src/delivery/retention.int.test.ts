import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { Stream } from '../../test/events.ts';
import { notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { Retention } from './retention.ts';

const DAY = 24 * 3_600_000;
const NOW = new Date('2026-06-01T12:00:00.000Z');
const daysAgo = (d: number) => new Date(NOW.getTime() - d * DAY);

describe(`retention: exactly the expired rows are purged (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  const withSmtp = siteFor({ host: '127.0.0.1', port: 2525 });
  const noSmtp = siteFor(undefined);
  const ids = {} as Record<string, string>;
  const events = {} as Record<string, string>;
  const logs: object[] = [];
  const logger = { info: (o: object) => logs.push(o), error: (o: object) => logs.push(o) };

  /** A user created `age` days ago, and one verification email then (queued with SMTP, suppressed without). */
  async function verification(name: string, age: number, site = withSmtp) {
    const s = new Stream();
    const created = s.created({ email: `${name}@example.com`, verified: false });
    await handleEvent(db, created, site, daysAgo(age));
    events[`${name}:created`] = created.id;
    const requested = s.verificationRequested(`${name}@example.com`, 'token', daysAgo(age - 7).toISOString());
    const handled = await handleEvent(db, requested, site, daysAgo(age));
    events[name] = requested.id;
    ids[name] = handled.deliveryIds[0]!;
  }

  const remaining = async () => ({
    deliveries: new Set((await db.query<{ id: string }>('SELECT id FROM deliveries')).rows.map((r) => r.id)),
    attempts: Number(
      (await db.query<{ n: string }>('SELECT count(*) AS n FROM delivery_attempts')).rows[0]!.n,
    ),
    events: new Set(
      (await db.query<{ event_id: string }>('SELECT event_id FROM processed_events')).rows.map(
        (r) => r.event_id,
      ),
    ),
  });

  before(async () => {
    db = await notificationsDb('retention');
    await verification('old-suppressed', 91, noSmtp);
    await verification('old-sent', 91);
    await verification('old-queued', 91);
    await verification('young-suppressed', 89, noSmtp);
    await verification('week-old', 8, noSmtp);
    await verification('fresh', 6, noSmtp);
    await db.query(
      `UPDATE deliveries SET status = 'sent', sent_at = created_at, attempt_count = 1 WHERE id = $1`,
      [ids['old-sent']],
    );
    await db.query(
      `INSERT INTO delivery_attempts (delivery_id, attempt, worker, started_at, finished_at, outcome, smtp_response)
       VALUES ($1, 1, 'w', $2, $2, 'sent', '250 ok')`,
      [ids['old-sent'], daysAgo(91).toISOString()],
    );
  });

  after(async () => {
    await db?.close();
  });

  it('keeps everything while the configured ages are longer than the rows are old', async () => {
    const before = await remaining();
    const site = { ...withSmtp, 'email.delivery.retentionDays': 200, 'kafka.topicRetentionHours': 24 * 200 };
    const purged = await new Retention({ db, siteConfig: () => site, logger, clock: () => NOW }).run(NOW);
    assert.deepEqual(purged, { deliveries: 0, attempts: 0, processedEvents: 0 });
    assert.deepEqual(await remaining(), before);
  });

  it('with the defaults (90 days, 168 h) purges finished deliveries past 90 days with their attempts, then the processed events past 7 days no delivery refers to', async () => {
    logs.length = 0;
    // Two instances at once, one row per batch: each row goes once, and nothing else goes.
    const instance = () =>
      new Retention({
        db,
        siteConfig: () => withSmtp,
        logger,
        clock: () => NOW,
        batchSize: 1,
        maxBatches: 50,
      });
    const [a, b] = await Promise.all([instance().run(NOW), instance().run(NOW)]);
    assert.equal(a.deliveries + b.deliveries, 2);
    assert.equal(a.attempts + b.attempts, 1);
    const left = await remaining();
    assert.deepEqual(
      [...left.deliveries].sort(),
      [ids['old-queued'], ids['young-suppressed'], ids['week-old'], ids.fresh].sort(),
      'the old queued delivery is still work; the young ones are not expired',
    );
    assert.equal(left.attempts, 0);
    // Processed events: those of deliveries still kept stay, the rest go once older than 168 h.
    const kept = ['old-queued', 'young-suppressed', 'week-old', 'fresh', 'fresh:created'].map(
      (k) => events[k],
    );
    assert.deepEqual([...left.events].sort(), kept.sort());
    assert.equal(a.processedEvents + b.processedEvents, 7);
    assert.ok(
      logs.some((l) => (l as { deliveries?: number }).deliveries !== undefined),
      'a run that purged says so in the log',
    );
  });

  it('runs on its schedule: not again before the interval has passed on its clock', async () => {
    let now = NOW;
    const purges: number[] = [];
    const retention = new Retention({
      db,
      siteConfig: () => ({ ...withSmtp, 'email.delivery.retentionDays': 1 }),
      logger,
      clock: () => now,
      intervalMs: 60_000,
      onPurged: (p) => purges.push(p.deliveries),
    });
    assert.ok(await retention.runIfDue());
    now = new Date(NOW.getTime() + 30_000);
    assert.equal(await retention.runIfDue(), undefined);
    now = new Date(NOW.getTime() + 61_000);
    assert.ok(await retention.runIfDue());
    // At one day: the young suppressed, week-old and fresh rows go; the queued one stays.
    assert.deepEqual(purges, [3, 0]);
    assert.deepEqual([...(await remaining()).deliveries], [ids['old-queued']]);
  });
});
