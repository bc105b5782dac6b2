import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Database, openDatabase } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { createMailer } from '../smtp/index.ts';
import { DeliveryWorker } from './worker.ts';

/**
 * The worker wakes when another process commits queued deliveries (NOTIFY), and when a retry it
 * scheduled falls due (its own timer); its poll is 60 s, so neither can be explained by polling.
 * Nothing here calls `worker.wake()`. On Postgres the worker has its own pool and LISTEN
 * connection; on PGlite (one process's database) it shares the instance and its LISTEN.
 */
const url = process.env.DATABASE_URL;
const kind = testDatabaseKind();
const POLL_MS = 60_000;
// Far below the poll; generous for a loaded machine. The figures are printed.
const WITHIN_MS = 2_000;

describe(`delivery worker woken by NOTIFY and by its retry timer (${kind})`, () => {
  let writer: TestDatabase;
  let workerDb: Database;
  let smtp: TestSmtpServer;
  let site: SiteConfig;
  let worker: DeliveryWorker;
  let mailer: ReturnType<typeof createMailer>;
  const user = new Stream();
  let seq = 0;

  const listening = async () => {
    if (!url) return;
    await eventually(async () =>
      (
        await writer.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
          [`sitemail listen ${writer.schema}`],
        )
      ).rows.length > 0
        ? true
        : undefined,
    );
  };

  before(async () => {
    writer = await notificationsDb('worker_wake');
    workerDb = url ? await openDatabase({ url, schema: writer.schema, maxConnections: 4 }) : writer;
    smtp = await startSmtpServer();
    site = siteFor(smtp);
    mailer = createMailer(() => site, {
      poolSize: 2,
      timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 5000 },
    });
    await handleEvent(
      writer,
      user.created({ email: 'alice@example.com', verified: true, provider: 'github' }),
      site,
      new Date(),
    );
    worker = new DeliveryWorker({
      db: workerDb,
      mailer,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      concurrency: 2,
      pollIntervalMs: POLL_MS,
      backoff: { baseMs: 200, maxMs: 400 },
    });
    worker.start();
    await listening();
  });
  after(async () => {
    await worker.stop();
    await mailer.close();
    await smtp.close();
    if (workerDb !== writer) await workerDb.close();
    await writer.close();
  });

  /** Queues one email in the writer's transaction; resolves with ms from commit to SMTP accepted. */
  const queueAndTime = async (label: string) => {
    const before = smtp.received.length;
    await handleEvent(writer, codeMonitorTriggered(user.userId, `monitor ${++seq}`, seq), site, new Date());
    const committedAt = Date.now();
    const [email] = (await smtp.waitForEmails(before + 1, WITHIN_MS)).slice(before);
    const ms = (email?.receivedAt.getTime() ?? Number.NaN) - committedAt;
    process.stdout.write(`${kind}: ${label}: accepted by SMTP ${ms} ms after the commit\n`);
    return ms;
  };

  it('sends deliveries another process queued within the bound, the poll being 60 s', async () => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push(await queueAndTime(`email ${i + 1}`));
    assert.ok(Math.max(...times) < WITHIN_MS, `times ${times.join(', ')}`);
  });

  it('retries a deferred delivery when its retry falls due, by its own timer', async () => {
    smtp.setScript([{ stage: 'rcpt', code: 451, times: 1 }]);
    const before = smtp.received.length;
    const handled = await handleEvent(
      writer,
      codeMonitorTriggered(user.userId, `monitor ${++seq}`, seq),
      site,
      new Date(),
    );
    const id = handled.deliveryIds[0];
    await smtp.waitForEmails(before + 1, 5_000);
    // Outcomes are recorded after the send, in batches.
    const rows = await eventually(async () => {
      const res = await writer.query<{ outcome: string; finished_at: Date }>(
        'SELECT outcome, finished_at FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt',
        [id],
      );
      return res.rows.length >= 2 ? res.rows : undefined;
    });
    assert.deepEqual(
      rows.map((r) => r.outcome),
      ['deferred', 'sent'],
    );
    const gap = new Date(rows[1]!.finished_at).getTime() - new Date(rows[0]!.finished_at).getTime();
    process.stdout.write(`${kind}: retry sent ${gap} ms after the 451 (backoff 200-400 ms)\n`);
    assert.ok(gap < 5_000, `retried after ${gap} ms`);
  });

  if (url) {
    it('keeps sending after its LISTEN connection is terminated (it reconnects)', async () => {
      const killed = await writer.query<{ n: number }>(
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [`sitemail listen ${writer.schema}`],
      );
      assert.equal(killed.rows[0]?.n, 1);
      await queueAndTime('email right after the LISTEN connection was killed');
      await listening();
      await queueAndTime('email after the reconnect');
    });
  }
});
