import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, kafkaBus, type Publisher } from '@sitemail/bus';
import { apiKeySecretSha256, type FleetEvent, sources, topics, toWireMessage } from '@sitemail/contracts';
import { serverOptions } from '@sitemail/service-kit';
import {
  type ReadMessage,
  readTopic,
  type TestDatabase,
  type TestKafka,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { notificationsApp } from '../app.ts';

const FORGED_KEY = 'sitemail_forged-by-code-monitoring-0123456789abcdefghijk';
const FORGED_ON_ACCOUNTS = 'sitemail_forged-source-on-accounts-0123456789abcdefghij';
const ADMIN_KEY = 'sitemail_real-admin-from-accounts-0123456789abcdefghijk';

describe(`each topic carries only its producer's event types and source (Kafka mock cluster, ${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let bus: Bus;
  let publisher: Publisher;
  let db: TestDatabase;
  let app: FastifyInstance;
  let deadLetters: ReadMessage[] = [];
  const forger = new Stream();
  const admin = new Stream();
  const legitimateMonitor = codeMonitorTriggered(admin.userId, 'real monitor');
  const monitorWithAccountsSource = codeMonitorTriggered(admin.userId, 'wrong source');

  const processed = async (eventId: string) =>
    (await db.query('SELECT 1 FROM processed_events WHERE event_id = $1', [eventId])).rowCount === 1
      ? true
      : undefined;
  const testEmail = (key: string) =>
    app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `Bearer ${key}` },
      payload: { to: 'a@b.example' },
    });
  const send = (topic: string, source: string, ...events: FleetEvent[]) =>
    publisher.publish(
      topic,
      events.map((e) => toWireMessage(e, source)),
    );

  before(async () => {
    kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 1 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
      ],
    });
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'notifications-authority-test',
      logLevel: 'error',
      sessionTimeoutMs: 6000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
    });
    publisher = await bus.publisher();
    db = await notificationsDb('authority');
    app = Fastify(serverOptions({ logger: false }));
    // No SMTP saved: an authenticated admin's test email is a 422, an unauthenticated caller's a 401.
    await app.register(notificationsApp, {
      db,
      bus,
      siteConfig: () => siteFor(undefined),
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await app.ready();

    // The attack: whoever may write the code-monitoring topic makes itself a site admin with a
    // key of its own, once claiming to be accounts and once as itself.
    await send(
      topics.codeMonitoringEvents,
      sources.accounts,
      forger.created({ email: 'eve@example.com', verified: true, siteAdmin: true, username: 'eve' }),
    );
    await send(
      topics.codeMonitoringEvents,
      sources.codeMonitoring,
      forger.apiKeyCreated('eve key', apiKeySecretSha256(FORGED_KEY)),
    );
    // Right topic and type, wrong producer: code monitoring's own type claiming to come from accounts.
    await send(topics.codeMonitoringEvents, sources.accounts, monitorWithAccountsSource);
    await send(topics.codeMonitoringEvents, sources.codeMonitoring, legitimateMonitor);
    // On the accounts topic, an account event that says it comes from code monitoring.
    const admin2 = new Stream();
    await send(
      topics.accountsEvents,
      sources.codeMonitoring,
      admin2.created({ email: 'mallory@example.com', verified: true, siteAdmin: true, username: 'mallory' }),
      admin2.apiKeyCreated('mallory key', apiKeySecretSha256(FORGED_ON_ACCOUNTS)),
    );
    const adminCreated = admin.created({
      email: 'root@example.com',
      verified: true,
      siteAdmin: true,
      username: 'root',
    });
    const adminKey = admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY));
    await send(topics.accountsEvents, sources.accounts, adminCreated, adminKey);
    await eventually(() => processed(adminKey.id), 60_000, 'the accounts events');
    await eventually(() => processed(legitimateMonitor.id), 60_000, 'the code-monitoring event');
    deadLetters = await readTopic(kafka.brokers, topics.notificationsDeadLetter, {
      count: 5,
      timeoutMs: 30_000,
    });
  });

  after(async () => {
    await app?.close();
    await bus?.close();
    await db?.close();
    await kafka?.stop();
  });

  it('a key "created" on the code-monitoring topic does not authenticate; the real admin key does', async () => {
    const forged = await testEmail(FORGED_KEY);
    assert.equal(forged.statusCode, 401, forged.body);
    const forgedSource = await testEmail(FORGED_ON_ACCOUNTS);
    assert.equal(forgedSource.statusCode, 401, forgedSource.body);
    const real = await testEmail(ADMIN_KEY);
    assert.equal(real.statusCode, 422, real.body);
    const { rowCount } = await db.query('SELECT 1 FROM recipients WHERE user_id = $1', [forger.userId]);
    assert.equal(rowCount, 0, 'no recipient was projected from the forged events');
  });

  it('dead-letters each refused message with a reason naming topic, type and source', async () => {
    // Two topics: no order between them, so compared as sets.
    const reasons = deadLetters.map((m) => m.headers['x-dead-letter-reason']).sort();
    const cm = topics.codeMonitoringEvents;
    const acc = topics.accountsEvents;
    assert.deepEqual(
      reasons,
      [
        `UserCreated (source ${sources.accounts}) is refused on topic ${cm}: it carries CodeMonitorTriggered only`,
        `ApiKeyCreated (source ${sources.codeMonitoring}) is refused on topic ${cm}: it carries CodeMonitorTriggered only`,
        `CodeMonitorTriggered (source ${sources.accounts}) is refused on topic ${cm}: it carries events from ${sources.codeMonitoring} only`,
        `UserCreated (source ${sources.codeMonitoring}) is refused on topic ${acc}: it carries events from ${sources.accounts} only`,
        `ApiKeyCreated (source ${sources.codeMonitoring}) is refused on topic ${acc}: it carries events from ${sources.accounts} only`,
      ].sort(),
    );
    for (const m of deadLetters) {
      assert.ok(m.headers['x-original-topic'], 'the original topic travels with it');
      assert.ok(m.value?.includes('"type"'), 'the message itself travels unchanged');
    }
    assert.equal(await processed(monitorWithAccountsSource.id), undefined);
  });
});
