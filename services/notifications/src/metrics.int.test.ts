import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, kafkaBus, type Publisher } from '@sitemail/bus';
import { type FleetEvent, sources, topics, toWireMessage } from '@sitemail/contracts';
import { type MetricSample, metricValue, parseMetrics } from '@sitemail/service-kit';
import {
  startSmtpServer,
  type TestDatabase,
  type TestKafka,
  type TestSmtpServer,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { codeMonitorTriggered, Stream, testLinkKey } from '../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../test/harness.ts';
import { notificationsApp } from './app.ts';

/**
 * notifications' /metrics as a scraper sees it while the real pipeline runs: events published to
 * the Kafka mock cluster through kafkajs, consumed by the app's consumer, decided, and delivered
 * by its worker to a real SMTP server that defers the first email once.
 */
describe(`notifications /metrics (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let bus: Bus;
  let publisher: Publisher;
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  const alice = new Stream();
  const bob = new Stream();
  const carol = new Stream();
  const stranger = new Stream();

  before(async () => {
    kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 2 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
      ],
    });
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'metrics-test',
      logLevel: 'nothing',
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 200,
    });
    publisher = await bus.publisher();
    db = await notificationsDb('metrics');
    smtp = await startSmtpServer({
      script: [{ stage: 'rcpt', code: 450, times: 1, message: '450 4.2.0 mailbox busy, try again' }],
    });
    app = Fastify({ logger: false });
    await app.register(notificationsApp, {
      db,
      bus,
      siteConfig: () => siteFor(smtp),
      linkTokenKeys: testLinkKey,
      worker: { pollIntervalMs: 50, poolSize: 1, backoff: { baseMs: 50, maxMs: 100 } },
    });
    await app.ready();
    await eventually(
      async () =>
        (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200 ? true : undefined,
      30_000,
      'the consumer assigned',
    );
  });
  after(async () => {
    await app?.close();
    await publisher?.close();
    await bus?.close();
    await kafka?.stop();
    await smtp?.close();
    await db?.close();
  });

  const scrape = async (): Promise<{ samples: MetricSample[]; text: string }> => {
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return { samples: parseMetrics(res.body), text: res.body };
  };
  const until = async (what: string, ok: (s: MetricSample[]) => boolean) => {
    let last: MetricSample[] = [];
    try {
      return await eventually(
        async () => {
          last = (await scrape()).samples;
          return ok(last) ? last : undefined;
        },
        30_000,
        what,
      );
    } catch (err) {
      const ours = last.filter((s) => s.name.startsWith('notifications_') && !s.name.includes('_bucket'));
      throw new Error(`${(err as Error).message}; last scrape: ${JSON.stringify(ours)}`);
    }
  };
  const publish = (topic: string, ...events: FleetEvent[]) =>
    publisher.publish(
      topic,
      events.map((e) =>
        toWireMessage(e, topic === topics.codeMonitoringEvents ? sources.codeMonitoring : sources.accounts),
      ),
    );

  it('exposes every notifications series, and the pipeline moves them: events, decisions, deliveries, sends, replies, dead letters, lag', async () => {
    const before = (await scrape()).samples;
    for (const name of [
      'notifications_deliveries',
      'notifications_awaiting_recipients',
      'notifications_send_duration_seconds_count',
      'notifications_dead_letters_total',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(
        before.some((s) => s.name === name),
        `${name} is exposed`,
      );
    }
    assert.equal(metricValue(before, 'notifications_deliveries', { status: 'sent' }), 0);

    await publish(
      topics.accountsEvents,
      alice.created({ email: 'alice@example.com', verified: false, username: 'alice' }),
      // A link that expires long after the run: an expired one is never sent.
      alice.next('EmailVerificationRequested', {
        email: 'alice@example.com',
        token: alice.seal('verify-token-1', 'EmailVerificationRequested'),
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      }),
      bob.created({ email: 'bob@example.com', verified: true, username: 'bob' }),
      bob.apiKeyCreated('ci'),
      carol.created({ email: 'carol@example.com', verified: false, username: 'carol' }),
      carol.apiKeyCreated('ci'),
    );
    // Nobody notifications knows: the email waits for its recipient's events.
    await publish(topics.codeMonitoringEvents, codeMonitorTriggered(stranger.userId));
    await publisher.publish(topics.accountsEvents, [{ key: 'x', value: 'not an event' }]);

    const after = await until(
      'two emails sent',
      (s) =>
        metricValue(s, 'notifications_deliveries', { status: 'sent' }) === 2 &&
        metricValue(s, 'notifications_dead_letters_total') === 1 &&
        metricValue(s, 'notifications_events_handled_total') === 7,
    );
    const handled = (type: string) => metricValue(after, 'notifications_events_handled_total', { type });
    assert.deepEqual(
      [
        handled('UserCreated'),
        handled('EmailVerificationRequested'),
        handled('ApiKeyCreated'),
        handled('CodeMonitorTriggered'),
      ],
      [3, 1, 2, 1],
    );
    const decided = (labels: Record<string, string>) =>
      metricValue(after, 'notifications_decisions_total', labels);
    assert.equal(
      decided({ decision: 'send' }),
      2,
      JSON.stringify(after.filter((s) => s.name === 'notifications_decisions_total')),
    );
    assert.equal(decided({ kind: 'api-key-created', decision: 'suppress', reason: 'primary-unverified' }), 1);
    assert.equal(decided({ decision: 'await-recipient', reason: 'unknown-recipient' }), 1);
    assert.equal(metricValue(after, 'notifications_deliveries', { status: 'suppressed' }), 1);
    assert.equal(metricValue(after, 'notifications_deliveries', { status: 'awaiting-recipient' }), 1);
    assert.equal(metricValue(after, 'notifications_deliveries', { status: 'queued' }), 0, 'shown at 0');
    assert.equal(metricValue(after, 'notifications_awaiting_recipients'), 1);
    // The first email was deferred once (450), then both went through.
    assert.equal(metricValue(after, 'notifications_smtp_replies_total', { class: '2xx' }), 2);
    assert.equal(metricValue(after, 'notifications_smtp_replies_total', { class: '4xx' }), 1);
    assert.equal(metricValue(after, 'notifications_send_duration_seconds_count'), 3);
    assert.ok(metricValue(after, 'notifications_send_duration_seconds_sum') > 0);
    // Every message of each partition handled and committed: lag 0 where a batch came.
    const lags = after.filter((s) => s.name === 'notifications_consumer_lag');
    assert.ok(lags.length >= 2, JSON.stringify(lags));
    assert.ok(
      lags.every((s) => s.value === 0 && /^\d+$/.test(s.labels.partition ?? '')),
      JSON.stringify(lags),
    );
    assert.ok(lags.some((s) => s.labels.topic === topics.codeMonitoringEvents));
    assert.equal(
      metricValue(after, 'http_request_duration_seconds_count', { route: '/metrics', status_code: '200' }) >=
        1,
      true,
    );
  });

  it('no label value carries an address or a user id of the run', async () => {
    const { samples, text } = await scrape();
    const ids = [alice, bob, carol, stranger].map((s) => s.userId);
    for (const s of samples) {
      for (const [label, value] of Object.entries(s.labels)) {
        assert.ok(!value.includes('@'), `${s.name}{${label}="${value}"} carries an @`);
        for (const id of ids) assert.ok(!value.includes(id), `${s.name}{${label}} carries user id ${id}`);
      }
    }
    for (const id of ids) assert.ok(!text.includes(id), `user id ${id} appears in /metrics`);
    assert.doesNotMatch(text, /example\.com/);
  });
});
