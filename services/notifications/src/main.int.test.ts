import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, inProcessBus } from '@sitemail/bus';
import { apiKeySecretSha256, topics, toWireMessage } from '@sitemail/contracts';
import { staticSiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import { Stream, testLinkKey } from '../test/events.ts';
import { eventually, notificationsDb } from '../test/harness.ts';
import { type RunningNotifications, startNotifications } from './main.ts';

const ADMIN_KEY = 'sitemail_main-test-admin-key-0123456789abcdefghijklmnopq';

describe(`startNotifications over the in-process bus, as npm start runs it (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let bus: Bus;
  let smtp: TestSmtpServer;
  let running: RunningNotifications;
  const admin = new Stream();
  const config = staticSiteConfig({ externalURL: 'https://sourcegraph.example.com' });

  before(async () => {
    db = await notificationsDb('main');
    bus = inProcessBus();
    smtp = await startSmtpServer();
    config.set({
      externalURL: 'https://sourcegraph.example.com',
      'email.address': 'from@example.com',
      'email.smtp': { authentication: 'none', host: smtp.host, port: smtp.port, noVerifyTLS: false },
      'auth.providers': [{ type: 'builtin' }],
    });
    running = await startNotifications({
      port: 0,
      db,
      bus,
      siteConfig: config,
      linkTokenKey: testLinkKey,
      logger: false,
      worker: { pollIntervalMs: 100 },
    });
  });

  after(async () => {
    await running?.close();
    await bus?.close();
    await smtp?.close();
    await db?.close();
    await config.close();
  });

  it('consumes events, sends the email, and shows it in the delivery log to a site admin over HTTP', async () => {
    const publisher = await bus.publisher();
    await publisher.publish(
      topics.accountsEvents,
      [
        admin.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
        admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY)),
      ].map((e) => toWireMessage(e)),
    );
    const [email] = await smtp.waitForEmails(1, 20_000);
    assert.deepEqual(email!.envelope.to, ['root@example.com']);
    const log = await eventually(async () => {
      const res = await fetch(`${running.url}/deliveries?status=sent`, {
        headers: { authorization: `token ${ADMIN_KEY}` },
      });
      if (res.status !== 200) return undefined;
      const body = (await res.json()) as { deliveries: { emailKind: string; recipientAddress: string }[] };
      return body.deliveries.length === 1 ? body.deliveries : undefined;
    });
    assert.equal(log[0]!.emailKind, 'api-key-created');
    assert.equal(log[0]!.recipientAddress, 'root@example.com');
    const anonymous = await fetch(`${running.url}/deliveries`);
    assert.equal(anonymous.status, 401);
  });

  it('takes a site config change (SMTP removed) without a restart: the next email is suppressed', async () => {
    config.set({ externalURL: 'https://sourcegraph.example.com', 'auth.providers': [{ type: 'builtin' }] });
    const key = admin.apiKeyCreated('second key');
    const publisher = await bus.publisher();
    await publisher.publish(topics.accountsEvents, [toWireMessage(key)]);
    const suppressed = await eventually(async () => {
      const res = await fetch(`${running.url}/deliveries?eventId=${key.id}`, {
        headers: { authorization: `token ${ADMIN_KEY}` },
      });
      const body = (await res.json()) as {
        deliveries: { status: string; suppressionReason: string | null }[];
      };
      return body.deliveries[0];
    });
    assert.equal(suppressed.status, 'suppressed');
    assert.equal(suppressed.suppressionReason, 'smtp-not-configured');
  });
});
