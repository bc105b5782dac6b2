/**
 * Issue 11's must-show line for item 6, both services in one process over the Kafka mock cluster
 * (startAccounts and startNotifications as their servers run them, each on its own database, the
 * testkit's real SMTP server): `550 5.1.1` for an address lists it in notifications, whose next
 * product email to it is suppressed without a connection; the address event goes through Kafka
 * (notifications' outbox, its relay, notifications.address-events.v1) to accounts, whose addresses
 * response says undeliverable; a site admin lifts it in notifications, the lifting reaches
 * accounts and clears it, and the next email goes out.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RunningAccounts, startAccounts } from '@sitemail/accounts';
import { kafkaBus } from '@sitemail/bus';
import { generateLinkTokenKey, parseLinkTokenKey, topics } from '@sitemail/contracts';
import { type RunningNotifications, startNotifications } from '@sitemail/notifications';
import { staticSiteConfig } from '@sitemail/site-config';
import {
  startSmtpServer,
  type TestDatabase,
  type TestKafka,
  type TestSmtpServer,
  testDatabase,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';

const eventually = async <T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe(`an undeliverable address reaches accounts through Kafka, and its lifting (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let smtp: TestSmtpServer;
  let accountsDb: TestDatabase;
  let notificationsDb: TestDatabase;
  let bus: ReturnType<typeof kafkaBus>;
  let accounts: RunningAccounts;
  let notifications: RunningNotifications;
  const linkTokenKey = parseLinkTokenKey(generateLinkTokenKey('fleet'));

  before(async () => {
    [kafka, smtp, accountsDb, notificationsDb] = await Promise.all([
      testKafka({
        topics: [
          { name: topics.accountsEvents, partitions: 1 },
          { name: topics.codeMonitoringEvents, partitions: 1 },
          { name: topics.notificationsDeadLetter, partitions: 1 },
          { name: topics.notificationsAddressEvents, partitions: 1 },
          { name: topics.accountsDeadLetter, partitions: 1 },
        ],
      }),
      startSmtpServer(),
      testDatabase('fleet_accounts'),
      testDatabase('fleet_notifications'),
    ]);
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'fleet-test',
      logLevel: 'nothing',
      sessionTimeoutMs: 4000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
    });
    const siteConfig = staticSiteConfig({
      externalURL: 'https://sourcegraph.example.com',
      'email.address': 'from@example.com',
      'email.smtp': { authentication: 'none', host: smtp.host, port: smtp.port, noVerifyTLS: false },
      'auth.providers': [{ type: 'builtin' }],
    });
    [accounts, notifications] = await Promise.all([
      startAccounts({
        port: 0,
        db: accountsDb,
        bus,
        siteConfig,
        linkTokenKey,
        passwordCost: { N: 1024, r: 8, p: 1 },
      }),
      startNotifications({
        port: 0,
        db: notificationsDb,
        bus,
        siteConfig,
        linkTokenKey,
        logger: false,
        worker: { pollIntervalMs: 100, poolSize: 1 },
      }),
    ]);
  });

  after(async () => {
    await accounts?.close();
    await notifications?.close();
    await bus?.close();
    await Promise.all([kafka?.stop(), smtp?.close(), accountsDb?.close(), notificationsDb?.close()]);
  });

  it('550 5.1.1: suppressed without a connection, undeliverable in accounts; lifted by an admin: cleared, and the next email goes out', async () => {
    const api = accounts.app.accounts;
    // Users made through accounts' own use cases: their events reach notifications over Kafka.
    const { user: root } = await api.createUserByAdmin({
      username: 'root',
      email: 'root@example.com',
      origin: 'api',
    });
    const { secret: adminKey } = await api.createApiKey(root.id, 'admin', root.id);
    const { user: alice } = await api.createUserByAdmin({
      username: 'alice',
      email: 'alice@example.com',
      origin: 'api',
    });
    const { secret: aliceKey } = await api.createApiKey(alice.id, 'laptop', alice.id);
    // Both API-key emails delivered: notifications knows both users (and the admin's key).
    await smtp.waitForEmails(2, 30_000);

    const aliceAddress = async () => {
      const res = await fetch(`${accounts.url}/users/me`, {
        headers: { authorization: `token ${aliceKey}` },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { emails: { email: string; deliverability: unknown }[] };
      return body.emails.find((e) => e.email === 'alice@example.com')!.deliverability;
    };
    assert.equal(await aliceAddress(), null);
    // accounts' /readyz names its consumer of the address events (ready once it has its partition).
    const ready = await eventually('accounts ready', async () => {
      const res = await fetch(`${accounts.url}/readyz`);
      return res.status === 200
        ? ((await res.json()) as { checks: Record<string, { ok: boolean }> })
        : undefined;
    });
    assert.equal(ready.checks.addressEvents?.ok, true);

    smtp.setScript([
      {
        stage: 'rcpt',
        code: 550,
        times: 1,
        message: '550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown',
      },
    ]);
    await api.createApiKey(alice.id, 'ci', alice.id);
    const undeliverable = (await eventually('accounts to read alice@example.com undeliverable', async () => {
      const d = await aliceAddress();
      return d === null ? undefined : d;
    })) as {
      status: string;
      since: string;
      cause: string;
      reply: { code: number; enhancedStatus: string; text: string };
    };
    assert.equal(undeliverable.status, 'undeliverable');
    assert.equal(undeliverable.cause, 'smtp-reply');
    assert.equal(undeliverable.reply.code, 550);
    assert.equal(undeliverable.reply.enhancedStatus, '5.1.1');
    assert.match(undeliverable.reply.text, /User unknown/);
    assert.ok(Date.now() - Date.parse(undeliverable.since) < 60_000, undeliverable.since);

    const admin = { authorization: `token ${adminKey}` };
    const sessions = smtp.sessions.length;
    await api.createApiKey(alice.id, 'deploy', alice.id);
    await eventually('the next product email to be suppressed', async () => {
      const res = await fetch(`${notifications.url}/deliveries?limit=50`, { headers: admin });
      const { deliveries } = (await res.json()) as {
        deliveries: { status: string; suppressionReason?: string | null; recipientAddress?: string | null }[];
      };
      return deliveries.some(
        (d) => d.status === 'suppressed' && d.suppressionReason === 'address-undeliverable',
      )
        ? true
        : undefined;
    });
    assert.equal(smtp.sessions.length, sessions, 'no connection for the suppressed email');

    const lifted = await fetch(`${notifications.url}/suppressions/alice@example.com`, {
      method: 'DELETE',
      headers: admin,
    });
    assert.equal(lifted.status, 200);
    await eventually('accounts to clear the address', async () =>
      (await aliceAddress()) === null ? true : undefined,
    );

    const received = smtp.received.length;
    await api.createApiKey(alice.id, 'after', alice.id);
    const next = await eventually('the next email to alice', async () =>
      smtp.received.slice(received).find((m) => m.envelope.to.includes('alice@example.com')),
    );
    assert.ok(next);
    const metrics = await (await fetch(`${notifications.url}/metrics`)).text();
    assert.match(
      metrics,
      /notifications_address_events_published_total\{type="EmailAddressUndeliverable"\} 1/,
    );
    assert.match(metrics, /notifications_address_events_published_total\{type="EmailAddressDeliverable"\} 1/);
  });
});
