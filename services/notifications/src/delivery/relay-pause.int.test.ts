import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { loadSiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import Fastify from 'fastify';
import { Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { attemptOutcomes, freePort, queueProductEmails } from '../../test/queue.ts';
import { notificationsApp } from '../app.ts';
import { handleEvent } from '../application/handle-event.ts';
import { createMailer } from '../smtp/index.ts';
import type { Mailer } from '../smtp/types.ts';
import { countByStatus } from '../store/deliveries.ts';
import { DeliveryWorker, type DeliveryWorkerOptions } from './worker.ts';

/** The queue pauses on a relay that refuses the sender or is down, and resumes by itself. */
describe(`delivery queue pause and resume against a real SMTP server (${testDatabaseKind()})`, () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  let db: TestDatabase;
  before(async () => {
    db = await notificationsDb('relay_pause');
    cleanups.push(() => db.close());
  });
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  function worker(o: Omit<DeliveryWorkerOptions, 'db' | 'mailer' | 'linkTokenKeys'>): DeliveryWorker {
    const mailer: Mailer = createMailer(o.siteConfig, {
      poolSize: 3,
      timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 5000 },
    });
    const w = new DeliveryWorker({ db, mailer, linkTokenKeys: testLinkKey, concurrency: 3, ...o });
    cleanups.push(async () => {
      await w.stop();
      await mailer.close();
    });
    return w;
  }

  it('drains the queue within ~10 s of the SMTP server coming back after an outage (measured at the sink)', async (t) => {
    // Longer than a probe period (a probe fails during it) and shorter than the first backoff
    // (15-30 s): without the breaker the last of the 30 would come ~20 s after the server is back.
    const outageMs = 10_000;
    const port = await freePort();
    const site = siteFor({ host: '127.0.0.1', port });
    // The product's defaults: backoff 30 s doubling to 1 h, probes every 5 s while unreachable.
    const w = worker({ siteConfig: () => site, pollIntervalMs: 200 });
    const downSince = Date.now();
    const ids = await queueProductEmails(db, site, 30);
    w.start();
    await eventually(async () => (w.queueState().state === 'paused' ? true : undefined));
    await new Promise((r) => setTimeout(r, Math.max(0, downSince + outageMs - Date.now())));
    const smtp = await startSmtpServer({ port });
    cleanups.push(() => smtp.close());
    const backAt = Date.now();
    const received = await smtp.waitForEmails(ids.length, 30_000);
    const drainMs = Math.max(...received.map((e) => e.receivedAt.getTime())) - backAt;
    const firstMs = Math.min(...received.map((e) => e.receivedAt.getTime())) - backAt;
    t.diagnostic(
      `outage ${outageMs} ms; after the server came back: first email at ${firstMs} ms, all ${ids.length} at ${drainMs} ms (before the breaker: 58 s after a 30 s outage)`,
    );
    assert.ok(drainMs < 10_000, `all accepted ${drainMs} ms after the server came back`);
    await eventually(async () => ((await countByStatus(db)).sent === ids.length ? true : undefined));
    assert.equal((await countByStatus(db)).failed, 0);
    assert.deepEqual(
      received.map((e) => e.headers.get('x-sitemail-delivery')).sort(),
      [...ids].sort(),
      'each exactly once',
    );
    assert.equal(w.queueState().state, 'sending');
    await w.stop();
    await db.query('DELETE FROM delivery_attempts');
    await db.query('DELETE FROM deliveries');
  });

  it('a wrong password pauses the queue and fails nothing; fixing it in the site config file sends everything once', async () => {
    const smtp = await startSmtpServer({
      auth: 'PLAIN',
      users: [{ username: 'mailer', password: 'right-password' }],
    });
    cleanups.push(() => smtp.close());
    const dir = await mkdtemp(join(tmpdir(), 'sitemail-pause-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'site-config.json');
    const configWith = (password: string) =>
      JSON.stringify({
        ...siteFor(undefined),
        'email.smtp': {
          host: smtp.host,
          port: smtp.port,
          authentication: 'PLAIN',
          username: 'mailer',
          password,
        },
      });
    await writeFile(file, configWith('wrong-password'));
    const source = loadSiteConfig(file, { debounceMs: 20, pollIntervalMs: 200 });
    cleanups.push(() => source.close());
    const ids = await queueProductEmails(db, source.current(), 12);
    // The first probe 1 s after the pause (default 5 s): the test waits for one.
    const w = worker({
      siteConfig: () => source.current(),
      pollIntervalMs: 50,
      breaker: { probeMinMs: 1_000 },
    });
    w.start();

    const paused = await eventually(async () => {
      const s = w.queueState();
      return s.state === 'paused' ? s : undefined;
    });
    assert.equal(paused.cause, 'sender');
    assert.match(paused.reason, /535/);
    assert.doesNotMatch(paused.reason, /wrong-password/);
    // Let it sit paused past a probe or two: nothing is claimed, nothing fails.
    await eventually(async () => {
      const s = w.queueState();
      return s.state === 'paused' && s.probes >= 1 ? true : undefined;
    }, 20_000);
    const meanwhile = await countByStatus(db);
    assert.equal(meanwhile.failed, 0, 'zero deliveries failed');
    assert.equal(meanwhile.sent, 0);
    assert.equal(smtp.received.length, 0);
    // The sends in flight when it paused (3 connections, 2 emails each) and one login per probe.
    const now = w.queueState();
    const probes = now.state === 'paused' ? now.probes : 0;
    const logins = smtp.authAttempts.length;
    assert.ok(logins <= 6 + probes + 1, `${logins} logins while paused (${probes} probes)`);

    await writeFile(file, configWith('right-password'));
    await smtp.waitForEmails(ids.length, 20_000);
    await eventually(async () => ((await countByStatus(db)).sent === ids.length ? true : undefined));
    await w.stop();
    const seen = smtp.received.map((e) => e.headers.get('x-sitemail-delivery') as string);
    assert.deepEqual(seen.sort(), [...ids].sort(), 'everything queued, each exactly once');
    assert.equal((await countByStatus(db)).failed, 0);
    for (const id of ids) {
      const outcomes = await attemptOutcomes(db, id);
      assert.equal(outcomes.at(-1), 'sent');
      assert.ok(
        outcomes.slice(0, -1).every((o) => o === 'paused'),
        outcomes.join(),
      );
    }
  });

  it('a test email accepted with the saved settings resumes a paused queue at once (not at the next probe)', async () => {
    await db.query('DELETE FROM delivery_attempts');
    await db.query('DELETE FROM deliveries');
    const port = await freePort();
    const site = siteFor({ host: '127.0.0.1', port });
    const ADMIN_KEY = 'sitemail_pause-admin-0123456789abcdefghijklmnopqrstuvwxyz';
    const admin = new Stream();
    await handleEvent(
      db,
      admin.created({ email: 'root@example.com', verified: true, siteAdmin: true }),
      site,
      new Date(),
    );
    await handleEvent(db, admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY)), site, new Date());
    const ids = await queueProductEmails(db, site, 5);
    const app = Fastify({ logger: false });
    cleanups.push(() => app.close());
    await app.register(notificationsApp, {
      db,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      // Probes a minute apart: only the test email can explain a quick resume.
      worker: { pollIntervalMs: 50, poolSize: 2, breaker: { probeMinMs: 60_000, steadyProbingMs: 0 } },
    });
    await app.ready();
    const queue = async () =>
      (
        await app.inject({
          method: 'GET',
          url: '/deliveries/queue',
          headers: { authorization: `token ${ADMIN_KEY}` },
        })
      ).json();
    const paused = await eventually(async () => {
      const q = await queue();
      return q.state === 'paused' ? q : undefined;
    });
    assert.equal(paused.cause, 'unreachable');
    const list = await app.inject({
      method: 'GET',
      url: '/deliveries',
      headers: { authorization: `token ${ADMIN_KEY}` },
    });
    assert.match(list.json().queue, /^paused: the SMTP server did not answer 3 tries in a row/);

    const smtp = await startSmtpServer({ port });
    cleanups.push(() => smtp.close());
    const sentTest = await app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `token ${ADMIN_KEY}` },
      payload: { to: 'root@example.com' },
    });
    assert.equal(sentTest.statusCode, 200, sentTest.body);
    const started = Date.now();
    // The test email and the 6 queued (5 product emails and the admin's API-key email).
    await smtp.waitForEmails(1 + ids.length + 1, 15_000);
    assert.ok(Date.now() - started < 10_000, 'resumed well before the next probe (60 s)');
    assert.equal((await queue()).state, 'sending');
    assert.ok(
      smtp.received.every((e) => e.headers.get('auto-submitted') === 'auto-generated'),
      'Auto-Submitted: auto-generated, the test email included',
    );
  });
});
