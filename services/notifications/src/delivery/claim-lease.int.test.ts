import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { Cleanups, startDeliveryWorker } from '../../test/delivery-fixture.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { queueProductEmails } from '../../test/queue.ts';
import { claimDueDeliveries } from '../store/queue.ts';
import type { DeliveryWorkerOptions } from './worker.ts';

/** A lease this short makes a dead worker's claims come back within a second or two (and a loaded machine still claims and starts a send well within it). */
const LEASE_MS = 1_000;

async function attemptsOf(db: TestDatabase, id: string) {
  const { rows } = await db.query<{ outcome: string; worker: string }>(
    'SELECT outcome, worker FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt',
    [id],
  );
  return rows;
}

describe(`claim lease and heartbeat (${testDatabaseKind()})`, () => {
  const cleanups = new Cleanups();
  after(cleanups.run);

  const worker = (db: TestDatabase, site: SiteConfig, o: Partial<DeliveryWorkerOptions> = {}) =>
    startDeliveryWorker(cleanups, db, site, {
      mailer: { poolSize: 2, timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 10_000 } },
      // No second try within the test: each attempt row is one send.
      worker: { claimTimeoutMs: LEASE_MS, backoff: { baseMs: 60_000, maxMs: 60_000 }, ...o },
    });

  it("sends a dead worker's claims once its lease has run out, each email once", async () => {
    const db = await notificationsDb('lease_dead');
    cleanups.push(() => db.close());
    const smtp = await startSmtpServer();
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const ids = await queueProductEmails(db, site, 3);
    // Claimed by a worker that is then SIGKILLed: nobody renews or finishes its claims.
    const claimedAt = Date.now();
    const claimed = await claimDueDeliveries(db, {
      worker: 'killed',
      limit: 10,
      now: new Date(),
      claimMs: LEASE_MS,
    });
    assert.equal(claimed.length, 3);
    const w = worker(db, site, { workerId: 'survivor' });
    w.start();
    await smtp.waitForEmails(3, 10_000);
    const tookMs = Date.now() - claimedAt;
    // The lease, the next reclaim pass (a quarter lease here) and the send: well under 120 s.
    assert.ok(tookMs >= LEASE_MS, `sent ${tookMs} ms after the claim: before its lease ran out`);
    assert.ok(tookMs < 5_000, `sent ${tookMs} ms after the claim`);
    for (const id of ids) {
      const attempts = await eventually(async () => {
        const a = await attemptsOf(db, id);
        return a.length === 2 ? a : undefined;
      });
      assert.deepEqual(attempts, [
        { outcome: 'abandoned', worker: 'killed' },
        { outcome: 'sent', worker: 'survivor' },
      ]);
    }
    await new Promise((r) => setTimeout(r, 1.5 * LEASE_MS));
    assert.equal(smtp.received.length, 3, 'each email once');
  });

  it("keeps a live worker's claim through a send slower than the lease: nobody else takes it", async () => {
    const db = await notificationsDb('lease_live');
    cleanups.push(() => db.close());
    // Takes the message and never answers: the send lasts until the worker's send timeout.
    const smtp = await startSmtpServer({ hang: 'data' });
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const [id] = await queueProductEmails(db, site, 1);
    const slow = worker(db, site, { workerId: 'slow', sendTimeoutMs: 4 * LEASE_MS });
    slow.start();
    await eventually(async () => {
      const { rows } = await db.query<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [
        id,
      ]);
      return rows[0]?.status === 'sending' ? true : undefined;
    });
    // A second worker reclaims every quarter lease meanwhile: the heartbeat must keep it off.
    const other = worker(db, site, { workerId: 'other' });
    other.start();
    const attempts = await eventually(async () => {
      const a = await attemptsOf(db, id!);
      return a.length > 0 ? a : undefined;
    }, 10_000);
    assert.deepEqual(attempts, [{ outcome: 'deferred', worker: 'slow' }]);
    const { rows } = await db.query<{ status: string; attempt_count: number }>(
      'SELECT status, attempt_count FROM deliveries WHERE id = $1',
      [id],
    );
    assert.deepEqual(rows[0], { status: 'deferred', attempt_count: 1 });
  });
});
