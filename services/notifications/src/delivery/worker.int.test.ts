import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { createMailer } from '../smtp/index.ts';
import type { Mailer } from '../smtp/types.ts';
import { countByStatus } from '../store/deliveries.ts';
import { claimDueDeliveries } from '../store/queue.ts';
import { DeliveryWorker } from './worker.ts';

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

/** A verified user and `n` code-monitor events for them, each queued as one delivery. */
async function queueDeliveries(db: TestDatabase, site: SiteConfig, n: number): Promise<string[]> {
  const user = new Stream();
  await handleEvent(
    db,
    // An address of its own: a 550 puts an address on the suppression list for the tests after it.
    user.created({
      email: `alice-${user.userId.slice(0, 8)}@example.com`,
      verified: true,
      provider: 'github',
    }),
    site,
    new Date(),
  );
  const ids: string[] = [];
  for (let i = 1; i <= n; i++) {
    const handled = await handleEvent(
      db,
      codeMonitorTriggered(user.userId, `monitor ${i}`, i),
      site,
      new Date(),
    );
    ids.push(...handled.deliveryIds);
  }
  return ids;
}

async function delivery(db: TestDatabase, id: string) {
  const { rows } = await db.query<{
    status: string;
    attempt_count: number;
    last_error: string | null;
    message_id: string;
  }>('SELECT status, attempt_count, last_error, message_id FROM deliveries WHERE id = $1', [id]);
  return rows[0]!;
}

async function attempts(db: TestDatabase, id: string) {
  const { rows } = await db.query<{
    outcome: string;
    response_code: number | null;
    error_step: string | null;
  }>(
    'SELECT outcome, response_code, error_step FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt',
    [id],
  );
  return rows;
}

describe(`delivery worker against a real SMTP server (${testDatabaseKind()})`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  function worker(
    db: TestDatabase,
    site: () => SiteConfig,
    o: { id?: string; concurrency?: number; claimTimeoutMs?: number } = {},
  ) {
    const mailer: Mailer = createMailer(site, {
      poolSize: o.concurrency ?? 3,
      timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 5000 },
    });
    const w = new DeliveryWorker({
      db,
      mailer,
      siteConfig: site,
      linkTokenKeys: testLinkKey,
      concurrency: o.concurrency ?? 3,
      pollIntervalMs: 50,
      claimTimeoutMs: o.claimTimeoutMs ?? 30_000,
      maxAttempts: 20,
      backoff: { baseMs: 50, maxMs: 400 },
      ...(o.id ? { workerId: o.id } : {}),
    });
    cleanups.push(async () => {
      await w.stop();
      await mailer.close();
    });
    return w;
  }

  let db: TestDatabase;
  before(async () => {
    db = await notificationsDb('worker');
    cleanups.push(() => db.close());
  });

  it('delivers exactly once through a 421 then 250, keeping one Message-ID across the attempts', async () => {
    const smtp = await startSmtpServer({ script: [{ stage: 'mail', code: 421, times: 1 }] });
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const [id] = await queueDeliveries(db, site, 1);
    const w = worker(db, () => site);
    w.start();
    const row = await eventually(async () => {
      const d = await delivery(db, id!);
      return d.status === 'sent' ? d : undefined;
    });
    await w.stop();
    assert.equal(smtp.received.length, 1);
    assert.equal(smtp.received[0]!.messageId, row.message_id);
    assert.equal(smtp.received[0]!.headers.get('x-sitemail-delivery'), id);
    assert.deepEqual(
      (await attempts(db, id!)).map((a) => [a.outcome, a.response_code]),
      [
        ['deferred', 421],
        ['sent', 250],
      ],
    );
    assert.equal(row.attempt_count, 2);
  });

  it('fails a 550 at once without retrying, and sends the next email regardless', async () => {
    const smtp = await startSmtpServer({
      script: [{ stage: 'rcpt', code: 550, times: 1, message: '550 no such user' }],
    });
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const w = worker(db, () => site, { concurrency: 1 });
    const [bad] = await queueDeliveries(db, site, 1);
    w.start();
    await eventually(async () => ((await delivery(db, bad!)).status === 'failed' ? true : undefined));
    const [good] = await queueDeliveries(db, site, 1);
    w.wake();
    await eventually(async () => ((await delivery(db, good!)).status === 'sent' ? true : undefined));
    await w.stop();
    const failed = await delivery(db, bad!);
    assert.equal(failed.attempt_count, 1);
    assert.match(failed.last_error ?? '', /550/);
    assert.deepEqual(
      (await attempts(db, bad!)).map((a) => [a.outcome, a.response_code, a.error_step]),
      [['failed', 550, 'envelope']],
    );
    assert.equal(smtp.received.length, 1);
  });

  it('keeps retrying while the server is down and delivers once it is back', async () => {
    const port = await freePort();
    const site = siteFor({ host: '127.0.0.1', port });
    const [id] = await queueDeliveries(db, site, 1);
    const w = worker(db, () => site);
    w.start();
    await eventually(async () => ((await delivery(db, id!)).attempt_count >= 2 ? true : undefined));
    assert.equal((await delivery(db, id!)).status === 'sent', false);
    const smtp = await startSmtpServer({ port });
    cleanups.push(() => smtp.close());
    await eventually(async () => ((await delivery(db, id!)).status === 'sent' ? true : undefined));
    await w.stop();
    assert.equal(smtp.received.length, 1);
    const outcomes = (await attempts(db, id!)).map((a) => a.outcome);
    assert.equal(outcomes.at(-1), 'sent');
    assert.ok(outcomes.slice(0, -1).every((o) => o === 'deferred'));
    assert.equal((await attempts(db, id!))[0]!.error_step, 'connect');
  });

  it('defers an email queued before SMTP was removed from the config, and sends it once it is back', async () => {
    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.close());
    const configured = siteFor(smtp);
    let site = configured;
    const [id] = await queueDeliveries(db, configured, 1);
    const { 'email.smtp': _removed, ...withoutSmtp } = configured;
    site = withoutSmtp;
    const w = worker(db, () => site);
    w.start();
    await eventually(async () => ((await delivery(db, id!)).attempt_count >= 1 ? true : undefined));
    const deferred = await eventually(async () => {
      const d = await delivery(db, id!);
      return d.status === 'deferred' ? d : undefined;
    });
    assert.match(deferred.last_error ?? '', /no SMTP server configured \(in email\.smtp\)/);
    site = configured;
    await eventually(async () => ((await delivery(db, id!)).status === 'sent' ? true : undefined));
    await w.stop();
    assert.equal(smtp.received.length, 1);
    assert.equal((await attempts(db, id!))[0]!.error_step, 'config');
  });

  it('reclaims a delivery whose worker crashed mid-send and sends it', async () => {
    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const [id] = await queueDeliveries(db, site, 1);
    // A worker claims it and dies: the claim stays, nobody finishes it.
    const claimed = await claimDueDeliveries(db, {
      worker: 'crashed',
      limit: 10,
      now: new Date(),
      claimMs: 300,
    });
    assert.deepEqual(
      claimed.map((c) => c.id),
      [id],
    );
    const w = worker(db, () => site, { claimTimeoutMs: 300 });
    w.start();
    await eventually(async () => ((await delivery(db, id!)).status === 'sent' ? true : undefined));
    await w.stop();
    assert.equal(smtp.received.length, 1);
    assert.deepEqual(
      (await attempts(db, id!)).map((a) => a.outcome),
      ['abandoned', 'sent'],
    );
  });
});

describe(`two delivery workers on one queue (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  const workers: DeliveryWorker[] = [];
  const mailers: Mailer[] = [];
  after(async () => {
    for (const w of workers) await w.stop();
    for (const m of mailers) await m.close();
    await smtp?.close();
    await db?.close();
  });

  it('send each of many emails exactly once', async () => {
    db = await notificationsDb('two_workers');
    smtp = await startSmtpServer();
    const site = siteFor(smtp);
    const n = 300;
    const ids = await queueDeliveries(db, site, n);
    for (const name of ['a', 'b']) {
      const mailer = createMailer(() => site, { poolSize: 4 });
      mailers.push(mailer);
      workers.push(
        new DeliveryWorker({
          db,
          mailer,
          siteConfig: () => site,
          linkTokenKeys: testLinkKey,
          workerId: `worker-${name}`,
          concurrency: 4,
          pollIntervalMs: 20,
        }),
      );
    }
    for (const w of workers) w.start();
    await smtp.waitForEmails(n, 60_000);
    await eventually(async () => ((await countByStatus(db)).sent === n ? true : undefined));
    for (const w of workers) await w.stop();
    const seen = smtp.received.map((e) => e.headers.get('x-sitemail-delivery') as string);
    assert.equal(seen.length, n);
    assert.deepEqual(new Set(seen), new Set(ids));
    const { rows } = await db.query<{ worker: string; n: string }>(
      `SELECT worker, count(*) AS n FROM delivery_attempts GROUP BY worker ORDER BY worker`,
    );
    assert.equal(
      rows.reduce((s, r) => s + Number(r.n), 0),
      n,
      'one attempt per delivery',
    );
    assert.equal(rows.length, 2, `both workers sent: ${JSON.stringify(rows)}`);
  });
});
