// The W3C trace context travels in the outbox: an append made inside a span stores the span's
// `traceparent` in its rows (same transaction as the events), and the relay puts it in each Kafka
// message's `traceparent` header (librdkafka's mock cluster through kafkajs, or KAFKA_BROKERS).
// An append with no span stores none and its messages carry no such header.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
// The SDK is the service kit's dependency; here only to have a provider and a context manager.
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { type Bus, kafkaBus, type Publisher } from '@sitemail/bus';
import { type FleetEvent, toWireMessage } from '@sitemail/contracts';
import {
  readTopic,
  type TestDatabase,
  type TestKafka,
  testDatabase,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import {
  createEventStore,
  createOutboxRelay,
  type OutboxRelay,
  prepareEventStore,
  type StoredEvent,
} from './index.ts';

const toMessage = (e: StoredEvent) =>
  toWireMessage({
    id: e.id,
    type: e.type,
    userId: e.streamId,
    position: e.position,
    time: e.time,
    schemaVersion: e.schemaVersion,
    data: e.data,
  } as FleetEvent);

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe(`outbox: the command's traceparent in the row and the Kafka headers (${testDatabaseKind()})`, () => {
  const provider = new NodeTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())],
  });
  let kafka: TestKafka;
  let bus: Bus;
  let publisher: Publisher;
  let db: TestDatabase;
  let relay: OutboxRelay | undefined;

  before(async () => {
    provider.register();
    kafka = await testKafka();
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'event-store-trace-test',
      logLevel: 'nothing',
      retries: 1,
    });
    publisher = await bus.publisher();
    db = await testDatabase('outbox_trace');
    await prepareEventStore(db);
  });
  after(async () => {
    await relay?.stop();
    await publisher?.close();
    await bus?.close();
    await kafka?.stop();
    await db?.close();
    await provider.shutdown();
  });

  it('stores the active span’s traceparent with every event of the append, and the relay sends it as a header', async () => {
    const store = createEventStore(db);
    const traced = randomUUID();
    const untraced = randomUUID();
    const { spanCtx, stored } = await trace.getTracer('test').startActiveSpan('command', async (span) => {
      const events = await store.append(traced, 0, [
        { type: 'EmailAdded', data: { email: 'a@example.com' } },
        { type: 'EmailAdded', data: { email: 'b@example.com' } },
      ]);
      span.end();
      return { spanCtx: span.spanContext(), stored: events };
    });
    const expected = `00-${spanCtx.traceId}-${spanCtx.spanId}-01`;
    assert.match(expected, TRACEPARENT);
    assert.deepEqual(
      stored.map((e) => e.traceparent),
      [expected, expected],
      'the append answers it',
    );
    // Outside any span (context.active() is the root): nothing stored.
    assert.equal(trace.getSpan(context.active()), undefined);
    const [plain] = await store.append(untraced, 0, [
      { type: 'EmailAdded', data: { email: 'c@example.com' } },
    ]);
    assert.equal(plain?.traceparent, undefined);
    assert.equal('traceparent' in (plain ?? {}), false, 'no key at all, so deepEqual of old events holds');

    const rows = await db.query<{ stream_id: string; traceparent: string | null }>(
      'SELECT stream_id, traceparent FROM events ORDER BY seq',
    );
    assert.deepEqual(
      rows.rows.map((r) => [r.stream_id, r.traceparent]),
      [
        [traced, expected],
        [traced, expected],
        [untraced, null],
      ],
    );
    assert.deepEqual(
      (await store.readStream(traced)).map((e) => e.traceparent),
      [expected, expected],
      'read back with the stream',
    );

    const topic = `accounts.trace.${randomUUID().slice(0, 8)}`;
    await kafka.createTopic(topic, 1);
    relay = createOutboxRelay({ db, publisher, topic, toMessage, pollIntervalMs: 50 });
    relay.start();
    const messages = await readTopic(kafka.brokers, topic, { count: 3 });
    const byKey = (key: string) => messages.filter((m) => m.key === key);
    assert.deepEqual(
      byKey(traced).map((m) => m.headers.traceparent),
      [expected, expected],
    );
    assert.equal(byKey(traced)[0]?.headers.ce_type, 'EmailAdded', 'the CloudEvents headers stay');
    assert.equal(byKey(untraced).length, 1);
    assert.equal(byKey(untraced)[0]?.headers.traceparent, undefined, 'no header without a trace');
  });
});
