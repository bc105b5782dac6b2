import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { validatorCompiler } from '@sitemail/service-kit';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import Fastify from 'fastify';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { deliveryRoutes } from '../http/deliveries.ts';
import { createMailer } from '../smtp/index.ts';
import { countByStatus } from '../store/deliveries.ts';
import { DeliveryWorker, type DeliveryWorkerOptions } from './worker.ts';

/** A verified user and `n` code-monitor events for them, each queued as one delivery. */
async function queueDeliveries(db: TestDatabase, site: SiteConfig, n: number): Promise<string[]> {
  const user = new Stream();
  await handleEvent(
    db,
    user.created({ email: 'alice@example.com', verified: true, provider: 'github' }),
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

describe(`delivery worker: sending rate and throttling (${testDatabaseKind()})`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  function worker(db: TestDatabase, site: () => SiteConfig, o: Partial<DeliveryWorkerOptions> = {}) {
    const concurrency = o.concurrency ?? 5;
    const mailer = createMailer(site, {
      poolSize: concurrency,
      timeouts: { connectionMs: 5000, greetingMs: 5000, socketMs: 10_000 },
    });
    const w = new DeliveryWorker({
      db,
      mailer,
      siteConfig: site,
      linkTokenKeys: testLinkKey,
      pollIntervalMs: 50,
      claimTimeoutMs: 60_000,
      backoff: { baseMs: 50, maxMs: 400 },
      ...o,
      concurrency,
    });
    cleanups.push(async () => {
      await w.stop();
      await mailer.close();
    });
    return w;
  }

  it('with maxMessagesPerSecond 20, 200 emails take about 10 s at the server, never more than ~20 in a second', async (t) => {
    const db = await notificationsDb('rate');
    cleanups.push(() => db.close());
    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.close());
    const base = siteFor(smtp);
    const site: SiteConfig = { ...base, 'email.smtp': { ...base['email.smtp']!, maxMessagesPerSecond: 20 } };
    await queueDeliveries(db, site, 200);
    const w = worker(db, () => site, { concurrency: 5 });
    w.start();
    await smtp.waitForEmails(200, 60_000);
    await eventually(async () => ((await countByStatus(db)).sent === 200 ? true : undefined), 20_000);
    await w.stop();

    const times = smtp.received.map((r) => r.receivedAt.getTime()).sort((a, b) => a - b);
    const span = times.at(-1)! - times[0]!;
    // 199 gaps of 50 ms are 9.95 s; the server's receive times jitter by a few ms each way.
    assert.ok(span >= 9000, `200 emails arrived within ${span} ms`);
    let busiest = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= 1000) j++;
      busiest = Math.max(busiest, i - j + 1);
    }
    // without the cap, 5 connections to a local server take hundreds a second
    assert.ok(busiest <= 30, `${busiest} emails arrived within one second`);
    assert.equal(new Set(smtp.received.map((r) => r.messageId)).size, 200);
    t.diagnostic(`200 emails over ${span} ms at the server; at most ${busiest} in one second`);
  });

  it('a server answering 454 4.7.0 Throttling for a while gets every email afterwards; no attempt is spent', async () => {
    const db = await notificationsDb('throttle');
    cleanups.push(() => db.close());
    const throttles = 15;
    const smtp = await startSmtpServer({
      script: [{ stage: 'data', code: 454, message: '4.7.0 Throttling', times: throttles }],
    });
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const ids = await queueDeliveries(db, site, 10);
    // Two attempts each: 15 throttled tries over 10 deliveries throttle one at least twice, which
    // would fail it if throttled tries counted.
    const w = worker(db, () => site, {
      concurrency: 3,
      maxAttempts: 2,
      throttlePause: { pauseBaseMs: 100, pauseMaxMs: 400 },
    });
    w.start();
    await eventually(async () => ((await countByStatus(db)).sent === 10 ? true : undefined), 30_000);
    await w.stop();

    const counts = await countByStatus(db);
    assert.equal(counts.failed, 0);
    assert.equal(smtp.received.length, 10);
    assert.deepEqual(new Set(smtp.received.map((r) => r.headers.get('x-sitemail-delivery'))), new Set(ids));
    const { rows } = await db.query<{ id: string; attempt_count: number; throttled_count: number }>(
      'SELECT id, attempt_count, throttled_count FROM deliveries WHERE id = ANY($1::uuid[])',
      [ids],
    );
    for (const r of rows)
      assert.equal(r.attempt_count - r.throttled_count, 1, `delivery ${r.id} spent attempts`);
    assert.ok(Math.max(...rows.map((r) => r.throttled_count)) >= 2);
    const { rows: attempts } = await db.query<{ outcome: string; response_code: number | null; n: string }>(
      `SELECT outcome, response_code, count(*) AS n FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[])
       GROUP BY outcome, response_code ORDER BY outcome`,
      [ids],
    );
    assert.deepEqual(
      attempts.map((a) => [a.outcome, a.response_code, Number(a.n)]),
      [
        ['sent', 250, 10],
        ['throttled', 454, throttles],
      ],
    );

    // The delivery log shows the throttled tries as such (authentication is not under test here).
    const app = Fastify({ logger: false });
    app.setValidatorCompiler(validatorCompiler);
    await app.register(deliveryRoutes, {
      db,
      authenticate: async () => ({ userId: 'admin', siteAdmin: true }),
    });
    cleanups.push(() => app.close());
    const most = rows.reduce((a, b) => (b.throttled_count > a.throttled_count ? b : a));
    const res = await app.inject({ method: 'GET', url: `/deliveries/${most.id}` });
    assert.equal(res.statusCode, 200, res.body);
    const detail = res.json();
    assert.equal(detail.status, 'sent');
    assert.equal(detail.attemptCount, most.attempt_count);
    assert.deepEqual(
      detail.attempts.map((a: { outcome: string; responseCode: number }) => [a.outcome, a.responseCode]),
      [...Array.from({ length: most.throttled_count }, () => ['throttled', 454]), ['sent', 250]],
    );
    assert.match(detail.attempts[0].error, /454 4\.7\.0 Throttling/);
  });
});
