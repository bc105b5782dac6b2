import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { Cleanups, startDeliveryWorker } from '../../test/delivery-fixture.ts';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { findDelivery } from '../store/deliveries.ts';

/**
 * Real sends of the worker with what users and admins control (issue 9): user text with line
 * breaks and bidi controls in names, and a saved SMTP host that is a cloud metadata address.
 */
describe(`delivery worker: untrusted input (${testDatabaseKind()})`, () => {
  const cleanups = new Cleanups();
  let db: TestDatabase;
  before(async () => {
    db = await notificationsDb('untrusted');
    cleanups.push(() => db.close());
  });
  after(cleanups.run);

  const run = (site: SiteConfig) => {
    const worker = startDeliveryWorker(cleanups, db, site, {
      mailer: { timeouts: { connectionMs: 2000, greetingMs: 2000, socketMs: 5000 } },
      worker: { maxAttempts: 3, backoff: { baseMs: 50, maxMs: 100 } },
    });
    worker.start();
    return worker;
  };

  it('CR/LF in a username, API-key name or monitor name reaches no header and starts no line', async () => {
    const smtp = await startSmtpServer({});
    cleanups.push(() => smtp.close());
    const site = siteFor(smtp);
    const user = new Stream();
    const evil = 'x\r\nBcc: victim@evil.example\r\n\r\nInjected body\u202e';
    const now = new Date();
    await handleEvent(
      db,
      user.created({ email: 'alice@example.com', verified: true, username: 'alice', provider: 'github' }),
      site,
      now,
    );
    await handleEvent(db, user.apiKeyCreated(evil), site, now);
    await handleEvent(db, codeMonitorTriggered(user.userId, evil, user.position + 1), site, now);
    const worker = run(site);
    const got = await smtp.waitForEmails(2, 20_000);
    // Stopped here: it must not take the next test's delivery (woken by its NOTIFY) to this server.
    await worker.stop();
    for (const email of got) {
      assert.deepEqual(email.envelope.to, ['alice@example.com']);
      assert.equal(email.headers.get('bcc'), undefined);
      assert.doesNotMatch(email.subject ?? '', /[\r\n\u202e]/);
      const headerBlock = email.raw.split('\r\n\r\n')[0]!;
      assert.doesNotMatch(headerBlock, /^Bcc:/im, 'no Bcc header');
      for (const l of (email.text ?? '').split('\n')) {
        assert.ok(!/^(Bcc:|Injected)/.test(l), `a text line starts with user text: ${JSON.stringify(l)}`);
      }
      assert.match(email.text ?? '', /x Bcc: victim@evil\.example Injected body/);
    }
  });

  it('a saved SMTP host that is a cloud metadata address: refused at connect, never dialled; the queue pauses saying why', async () => {
    const site = siteFor({ host: '169.254.169.254', port: 25 });
    const user = new Stream();
    const now = new Date();
    await handleEvent(
      db,
      user.created({ email: 'bob@example.com', verified: true, username: 'bob', provider: 'github' }),
      site,
      now,
    );
    const { deliveryIds } = await handleEvent(db, codeMonitorTriggered(user.userId), site, now);
    const worker = run(site);
    // The settings cannot send: the queue pauses (nothing fails) until the site config changes.
    const paused = await eventually(async () => {
      const s = worker.queueState();
      return s.state === 'paused' ? s : undefined;
    });
    assert.equal(paused.cause, 'sender');
    assert.match(paused.reason, /refusing to connect to 169\.254\.169\.254/);
    const row = await eventually(async () => {
      const d = await findDelivery(db, deliveryIds[0]!);
      return d?.status === 'deferred' ? d : undefined;
    });
    assert.equal(row.attempt_count, 1);
    assert.equal(row.last_error_step, 'connect');
    assert.match(
      String(row.last_error),
      /refusing to connect to 169\.254\.169\.254: a link-local or cloud metadata address/,
    );
  });
});
