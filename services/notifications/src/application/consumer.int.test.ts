import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, type Consumer, kafkaBus, type Publisher } from '@sitemail/bus';
import { type FleetEvent, sources, topics, toWireMessage } from '@sitemail/contracts';
import {
  readTopic,
  startSmtpServer,
  type TestDatabase,
  type TestKafka,
  type TestSmtpServer,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { DeliveryWorker } from '../delivery/worker.ts';
import { createMailer } from '../smtp/index.ts';
import type { Mailer } from '../smtp/types.ts';
import { createNotificationsConsumer } from './consumer.ts';

interface DeliveryRow {
  email_kind: string;
  recipient_address: string | null;
  status: string;
  suppression_reason: string | null;
}

describe(`consumer through Kafka (mock cluster), policy end to end (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let bus: Bus;
  let publisher: Publisher;
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let mailer: Mailer;
  let worker: DeliveryWorker;
  const consumers: Consumer[] = [];
  const alice = new Stream();

  // Each topic's own producer's source: the consumer dead-letters events from anyone else.
  const publish = (topic: string, ...events: FleetEvent[]) =>
    publisher.publish(
      topic,
      events.map((e) =>
        toWireMessage(e, topic === topics.codeMonitoringEvents ? sources.codeMonitoring : sources.accounts),
      ),
    );
  const deliveries = async () =>
    (
      await db.query<DeliveryRow>(
        'SELECT email_kind, recipient_address, status, suppression_reason FROM deliveries ORDER BY seq',
      )
    ).rows;
  const processed = async (eventId: string) =>
    (await db.query('SELECT 1 FROM processed_events WHERE event_id = $1', [eventId])).rowCount === 1
      ? true
      : undefined;
  const startConsumer = async (groupId: string) => {
    const c = createNotificationsConsumer({
      bus,
      db,
      siteConfig: () => site,
      onQueued: () => worker.wake(),
      groupId,
    });
    consumers.push(c);
    await c.start();
    return c;
  };
  let site: ReturnType<typeof siteFor>;

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
      clientId: 'notifications-test',
      logLevel: 'error',
      sessionTimeoutMs: 6000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
    });
    publisher = await bus.publisher();
    db = await notificationsDb('consumer');
    smtp = await startSmtpServer();
    site = siteFor(smtp);
    mailer = createMailer(() => site, { poolSize: 2 });
    worker = new DeliveryWorker({
      db,
      mailer,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      concurrency: 2,
      pollIntervalMs: 100,
    });
    worker.start();
    await startConsumer('notifications');
  });

  after(async () => {
    for (const c of consumers) await c.stop().catch(() => {});
    await worker?.stop();
    await mailer?.close();
    await bus?.close();
    await smtp?.close();
    await db?.close();
    await kafka?.stop();
  });

  it('sends the verification email to the unverified address and suppresses the API-key email, recording why', async () => {
    const key = alice.apiKeyCreated('first key');
    await publish(
      topics.accountsEvents,
      alice.created({ email: 'alice@example.com', verified: false, username: 'alice' }),
      alice.verificationRequested('alice@example.com', 'verify-me'),
      key,
    );
    const [verification] = await smtp.waitForEmails(1, 30_000);
    await eventually(() => processed(key.id), 30_000, 'the API-key event');
    await eventually(
      async () => ((await deliveries())[0]?.status === 'sent' ? true : undefined),
      10_000,
      'sent',
    );
    assert.deepEqual(verification!.envelope.to, ['alice@example.com']);
    assert.match(verification!.text ?? '', /\/-\/verify-email\?email=alice%40example\.com&code=verify-me/);
    assert.deepEqual(await deliveries(), [
      {
        email_kind: 'email-verification',
        recipient_address: 'alice@example.com',
        status: 'sent',
        suppression_reason: null,
      },
      {
        email_kind: 'api-key-created',
        recipient_address: 'alice@example.com',
        status: 'suppressed',
        suppression_reason: 'primary-unverified',
      },
    ]);
    assert.equal(smtp.received.length, 1);
  });

  it('once the primary is verified, sends the next key’s email to the primary only', async () => {
    const key = alice.apiKeyCreated('second key');
    await publish(
      topics.accountsEvents,
      alice.next('EmailAdded', { email: 'alice@work.example' }),
      alice.next('EmailVerified', { email: 'alice@work.example', method: 'site-admin' }),
      alice.verified('alice@example.com'),
      key,
    );
    const emails = await smtp.waitForEmails(2, 30_000);
    const apiKeyEmail = emails[1]!;
    assert.deepEqual(apiKeyEmail.envelope.to, ['alice@example.com']);
    assert.match(apiKeyEmail.subject ?? '', /An API key was created/);
    assert.match(apiKeyEmail.text ?? '', /"second key"/);
    assert.match(apiKeyEmail.from ?? '', /^"?Example Instance"? <from@example\.com>$/);
  });

  it('accepts code-monitoring notifications from another fleet service', async () => {
    await publish(topics.codeMonitoringEvents, codeMonitorTriggered(alice.userId, 'evals <b>'));
    const emails = await smtp.waitForEmails(3, 30_000);
    assert.deepEqual(emails[2]!.envelope.to, ['alice@example.com']);
    assert.match(emails[2]!.html ?? '', /evals &lt;b&gt;/);
  });

  it('sends a malformed event to the dead-letter topic and processes the next one', async () => {
    const next = alice.next('SiteAdminChanged', { siteAdmin: true, changedBy: alice.userId });
    await publisher.publish(topics.accountsEvents, [
      { key: alice.userId, value: '{"type":"ApiKeyCreated","id":"not-a-uuid"}' },
      toWireMessage(next),
    ]);
    await eventually(() => processed(next.id), 30_000, 'the event after the malformed one');
    const [dead] = await readTopic(kafka.brokers, topics.notificationsDeadLetter, {
      count: 1,
      timeoutMs: 30_000,
    });
    assert.equal(dead!.value, '{"type":"ApiKeyCreated","id":"not-a-uuid"}');
    const emails = await smtp.waitForEmails(4, 30_000);
    assert.match(emails[3]!.subject ?? '', /You are now a site admin/);
  });

  it('replaying the whole topic into an emptied projection rebuilds it and sends nothing new', async () => {
    const before = await deliveries();
    const recipientBefore = (
      await db.query('SELECT state FROM recipients WHERE user_id = $1', [alice.userId])
    ).rows;
    for (const c of consumers.splice(0)) await c.stop();
    await db.query('DELETE FROM recipients');
    await startConsumer('notifications-replay');
    // A new user published after the replay start: once it is projected, everything before it was replayed.
    const sentinel = new Stream();
    const created = sentinel.created({ email: 'sentinel@example.com', verified: true });
    await publish(topics.accountsEvents, created);
    await eventually(() => processed(created.id), 30_000, 'the replay');
    worker.wake();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await deliveries(), before);
    assert.equal(smtp.received.length, 4);
    assert.deepEqual(
      (await db.query('SELECT state FROM recipients WHERE user_id = $1', [alice.userId])).rows,
      recipientBefore,
    );
  });
});
