import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSmtpServer, type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import {
  attemptOutcomes,
  deliveryState,
  freePort,
  queueProductEmails,
  queueVerificationEmail,
} from '../../test/queue.ts';
import { createMailer } from '../smtp/index.ts';
import { countByStatus } from '../store/deliveries.ts';
import { DeliveryWorker } from './worker.ts';

const HOUR = 3_600_000;

/**
 * An SMTP outage longer than the old one-hour window (8 attempts, 30 s doubling to 1 h), with the
 * worker's clock running a minute per 10 ms: the product's default backoff and breaker, the real
 * SMTP server of the testkit, nothing waited out for real.
 */
describe(`retry by time through a 3-hour SMTP outage, simulated clock (${testDatabaseKind()})`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let db: TestDatabase;
  before(async () => {
    db = await notificationsDb('retry_by_time');
    cleanups.push(() => db.close());
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it('delivers every queued email once the server is back; a verification whose link expired meanwhile is not sent and says why', async () => {
    const start = Date.now();
    let now = start;
    const clock = () => new Date(now);
    const port = await freePort();
    const site = siteFor({ host: '127.0.0.1', port });
    const product = await queueProductEmails(db, site, 5, clock());
    const expiring = await queueVerificationEmail(
      db,
      site,
      'soon@example.com',
      new Date(start + HOUR),
      clock(),
    );
    const lasting = await queueVerificationEmail(
      db,
      site,
      'later@example.com',
      new Date(start + 24 * HOUR),
      clock(),
    );

    const mailer = createMailer(() => site, {
      poolSize: 2,
      timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 5000 },
    });
    const worker = new DeliveryWorker({
      db,
      mailer,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      concurrency: 2,
      pollIntervalMs: 10,
      // Claims are timed by the worker's clock too: at a minute per 10 ms, a send in flight
      // must not look like a crashed worker's.
      claimTimeoutMs: 10 * 24 * HOUR,
      clock,
    });
    cleanups.push(async () => {
      await worker.stop();
      await mailer.close();
    });
    worker.start();
    let ticking = true;
    const ticker = (async () => {
      while (ticking) {
        await new Promise((r) => setTimeout(r, 10));
        now += 60_000;
      }
    })();
    cleanups.push(async () => {
      ticking = false;
      await ticker;
    });

    // Three hours of outage on the worker's clock.
    await eventually(
      async () => (now - start > 3 * HOUR ? true : undefined),
      60_000,
      'three simulated hours',
    );
    const paused = worker.queueState();
    assert.equal(paused.state, 'paused');
    assert.match(paused.state === 'paused' ? paused.reason : '', /did not answer|does not answer/);
    const during = await countByStatus(db);
    assert.equal(during.failed, 0, 'nothing failed during the outage');
    assert.equal(during.sent, 0);

    const smtp = await startSmtpServer({ port });
    cleanups.push(() => smtp.close());
    const back = now;
    await smtp.waitForEmails(6, 30_000);
    const expired = await eventually(async () => {
      const d = await deliveryState(db, expiring);
      return d.status === 'failed' ? d : undefined;
    });
    ticking = false;
    await ticker;
    await worker.stop();

    // Every product email and the verification whose link still holds: exactly once each.
    const received = smtp.received.map((e) => e.headers.get('x-sitemail-delivery') as string);
    assert.deepEqual(received.sort(), [...product, lasting].sort());
    assert.ok(
      smtp.received.every((e) => e.headers.get('auto-submitted') === 'auto-generated'),
      'Auto-Submitted: auto-generated on every email (RFC 3834)',
    );
    // How fast it drains is measured with a real clock (relay-pause.int.test.ts): here a simulated
    // minute passes per 10 ms, while the sink alone takes a real 100 ms to greet.
    assert.ok(now > back);
    for (const id of [...product, lasting]) {
      const d = await deliveryState(db, id);
      assert.equal(d.status, 'sent');
      const outcomes = await attemptOutcomes(db, id);
      assert.equal(outcomes.at(-1), 'sent');
      assert.ok(!outcomes.includes('failed'));
    }
    // Product emails give up at the maximum age (5 days), a verification at its link's expiry.
    const p = await deliveryState(db, product[0]!);
    assert.equal(new Date(p.give_up_at!).getTime() - new Date(p.created_at).getTime(), 120 * HOUR);
    assert.equal(new Date((await deliveryState(db, lasting)).give_up_at!).getTime(), start + 24 * HOUR);

    // The expired one: never sent, failed link-expired, saying so.
    assert.equal(expired.failure_reason, 'link-expired');
    assert.match(
      expired.last_error ?? '',
      /^link-expired: the link in this email expired at .* a dead link is not sent/,
    );
    assert.equal(new Date(expired.give_up_at!).getTime(), start + HOUR);
    assert.ok(!smtp.received.some((e) => e.envelope.to.includes('soon@example.com')));
    // During the pause the tries were 'paused' (not counted); none was failed for the outage.
    const outcomes = await attemptOutcomes(db, expiring);
    assert.equal(outcomes.at(-1), 'failed');
    assert.ok(
      outcomes.slice(0, -1).every((o) => o === 'deferred' || o === 'paused'),
      outcomes.join(),
    );
  });
});
