// The outbox's "Must show" tests: events appended to the store reach a Kafka topic through the
// relay and kafkajs (librdkafka's mock cluster, or a real Kafka with KAFKA_BROKERS), read back
// with a kafkajs consumer.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, kafkaBus, type Publisher } from '@sitemail/bus';
import { type FleetEvent, toWireMessage } from '@sitemail/contracts';
import {
  type ReadMessage,
  readTopic,
  type TestDatabase,
  type TestKafka,
  testDatabase,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { eventually } from '../test/recording-publisher.ts';
import {
  createEventStore,
  createOutboxRelay,
  type OutboxRelay,
  prepareEventStore,
  type StoredEvent,
  StreamVersionConflictError,
} from './index.ts';

/** The accounts envelope of a stored event: the stream is the user. */
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

const emailAdded = (user: string, n: number) => ({
  type: 'EmailAdded',
  data: { email: `u${n}-${user.slice(0, 8)}@example.com` },
});

/** Per key, the positions in topic order; and every event id seen, to catch duplicates. */
function byUser(messages: ReadMessage[]) {
  const positions = new Map<string, number[]>();
  const ids: string[] = [];
  for (const m of messages) {
    const event = JSON.parse(m.value ?? 'null') as { id: string; userId: string; position: number };
    assert.equal(m.key, event.userId, 'keyed by user id');
    assert.equal(m.headers.ce_id, event.id);
    const list = positions.get(event.userId) ?? [];
    list.push(event.position);
    positions.set(event.userId, list);
    ids.push(event.id);
  }
  return { positions, ids };
}
const oneTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe(`outbox relay to Kafka through kafkajs (${testDatabaseKind()})`, () => {
  let kafka: TestKafka;
  let bus: Bus;
  let publisher: Publisher;
  let admin: ReturnType<Kafka['admin']>;
  const opened: TestDatabase[] = [];
  const relays: OutboxRelay[] = [];

  before(async () => {
    kafka = await testKafka();
    // Few kafkajs retries: a down broker then shows up as failed publishes the relay retries itself.
    bus = kafkaBus({ brokers: kafka.brokers, clientId: 'event-store-test', logLevel: 'nothing', retries: 1 });
    publisher = await bus.publisher();
    admin = new Kafka({
      brokers: kafka.brokers,
      clientId: 'event-store-test-admin',
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
  });
  after(async () => {
    for (const r of relays) await r.stop();
    await admin?.disconnect();
    await publisher?.close();
    await bus?.close();
    await kafka?.stop();
    for (const db of opened) await db.close();
  });

  const setup = async (label: string, partitions: number, maxConnections?: number) => {
    const db = await testDatabase(label, maxConnections ? { maxConnections } : {});
    opened.push(db);
    await prepareEventStore(db);
    const topic = `accounts.${label}.${randomUUID().slice(0, 8)}`;
    await kafka.createTopic(topic, partitions);
    return { db, store: createEventStore(db), topic };
  };
  const startRelay = (db: TestDatabase, topic: string, onError: (e: unknown) => void = () => {}) => {
    const relay = createOutboxRelay({
      db,
      publisher,
      topic,
      toMessage,
      batchSize: 50,
      pollIntervalMs: 50,
      retry: { initialMs: 100, maxMs: 500 },
      onError,
    });
    relays.push(relay);
    relay.start();
    return relay;
  };
  /** Messages on the topic, from the partitions' high watermarks: exact, unlike reading until a count. */
  const messagesOnTopic = async (topic: string) =>
    (await admin.fetchTopicOffsets(topic)).reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);

  it('delivers every committed event in exact per-user order across a relay restart and a broker down for seconds', async () => {
    const { db, store, topic } = await setup('outbox_order', 3);
    const users = Array.from({ length: 12 }, () => randomUUID());
    const versions = new Map<string, number>(users.map((u) => [u, 0]));
    let n = 0;
    const appendRound = async (perUser: number) => {
      for (let i = 0; i < perUser; i++) {
        for (const [k, user] of users.entries()) {
          // Some appends carry two events: both must arrive, in order, together with the rest.
          const count = (i + k) % 3 === 0 ? 2 : 1;
          const v = versions.get(user) ?? 0;
          await store.append(
            user,
            v,
            Array.from({ length: count }, () => emailAdded(user, n++)),
          );
          versions.set(user, v + count);
        }
      }
    };

    const first = startRelay(db, topic);
    await appendRound(4);
    await first.waitUntilIdle();
    await first.stop();

    await appendRound(3); // committed while no relay runs
    const errors: unknown[] = [];
    const second = startRelay(db, topic, (e) => errors.push(e));
    await second.waitUntilIdle();
    const beforeOutage = second.publishedUpTo();

    const broker = kafka.mock?.brokerIds[0];
    if (kafka.mock && broker !== undefined) {
      await kafka.mock.brokerDown(broker);
      await appendRound(3); // committed while Kafka is down
      await eventually(() => errors.length >= 2, 'the relay to fail against the down broker');
      await sleep(3000); // down for several seconds in all
      assert.deepEqual(second.publishedUpTo(), beforeOutage, 'the cursor does not move while Kafka is down');
      await kafka.mock.brokerUp(broker);
    } else {
      await appendRound(3); // a real Kafka (KAFKA_BROKERS) cannot be taken down from here
    }
    await second.waitUntilIdle();

    const total = [...versions.values()].reduce((a, b) => a + b, 0);
    assert.equal(total, n);
    const messages = await readTopic(kafka.brokers, topic, { count: total, timeoutMs: 60_000 });
    assert.equal(await messagesOnTopic(topic), total, 'nothing published twice');
    const { positions, ids } = byUser(messages);
    assert.equal(new Set(ids).size, total);
    for (const user of users)
      assert.deepEqual(positions.get(user), oneTo(versions.get(user) ?? 0), `order of ${user}`);
    assert.equal(messages[0]?.headers.ce_type, 'EmailAdded');
  });

  it('publishes every event of many concurrent writers once, in per-stream order, and none of the rejected ones', async () => {
    // A pool of 12 connections on Postgres, so the writers really run at once (PGlite queues them).
    const { db, store, topic } = await setup('outbox_conc', 4, 12);
    const relay = startRelay(db, topic);
    const hot = Array.from({ length: 3 }, () => randomUUID());
    const writers = 16;
    const rejectedIds = new Set<string>();
    let conflicts = 0;
    const currentVersion = async (stream: string) =>
      Number(
        (await db.query<{ v: number }>('SELECT version AS v FROM streams WHERE stream_id = $1', [stream]))
          .rows[0]?.v ?? 0,
      );
    const tryAppend = async (stream: string, expected: number, count: number) => {
      const events = Array.from({ length: count }, (_, i) => ({
        ...emailAdded(stream, i),
        id: randomUUID(),
      }));
      try {
        await store.append(stream, expected, events);
      } catch (err) {
        if (!(err instanceof StreamVersionConflictError)) throw err;
        conflicts++;
        for (const e of events) rejectedIds.add(e.id);
      }
    };
    const own = Array.from({ length: writers }, () => randomUUID());
    await Promise.all(
      own.map(async (mine, w) => {
        for (let i = 0; i < 12; i++) {
          const stream = i % 2 === 0 ? mine : (hot[(w + i) % hot.length] as string);
          await tryAppend(stream, await currentVersion(stream), 1 + ((w + i) % 2));
        }
      }),
    );
    // Stale writes for certain: both racers read the same version, at most one may win.
    await Promise.all(
      hot.map(async (stream) => {
        const v = await currentVersion(stream);
        await Promise.all([tryAppend(stream, v, 1), tryAppend(stream, v, 2)]);
      }),
    );
    assert.ok(conflicts >= hot.length, `stale writes are rejected (${conflicts})`);

    const versions = new Map<string, number>();
    for (const s of [...hot, ...own]) versions.set(s, await currentVersion(s));
    const total = [...versions.values()].reduce((a, b) => a + b, 0);
    const stored = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM events')).rows[0]?.n);
    assert.equal(stored, total, 'streams and events agree: no lost or duplicated event in the store');

    await relay.waitUntilIdle();
    const messages = await readTopic(kafka.brokers, topic, { count: total, timeoutMs: 60_000 });
    assert.equal(await messagesOnTopic(topic), total, 'none published twice');
    const { positions, ids } = byUser(messages);
    assert.equal(new Set(ids).size, total);
    for (const id of ids) assert.ok(!rejectedIds.has(id), 'a rejected write is never published');
    for (const [stream, version] of versions)
      assert.deepEqual(positions.get(stream), oneTo(version), `order of ${stream}`);
  });

  // PGlite is a single connection: a second transaction cannot commit while one is open, so this
  // race only exists (and can only be shown) on Postgres. The test is defined only there.
  if (testDatabaseKind() === 'postgres') {
    it('does not move past an open transaction that appended before a later one committed, and publishes it once it commits', async () => {
      const { db, store, topic } = await setup('outbox_late', 1, 4);
      const published: StoredEvent[] = [];
      const relay = createOutboxRelay({
        db,
        publisher,
        topic,
        toMessage,
        pollIntervalMs: 20,
        onPublished: (events) => published.push(...events),
      });
      relays.push(relay);
      relay.start();
      const early = randomUUID();
      const late = randomUUID();
      const later = randomUUID();
      await store.append(early, 0, [emailAdded(early, 0)]);
      await relay.waitUntilIdle();
      const settled = relay.publishedUpTo();

      // The "late" append writes its event (taking a sequence number and a transaction id), then
      // its transaction stays open in the projection until the test lets it commit.
      let commitLate!: () => void;
      const lateMayCommit = new Promise<void>((resolve) => {
        commitLate = resolve;
      });
      let lateWritten!: () => void;
      const lateIsWritten = new Promise<void>((resolve) => {
        lateWritten = resolve;
      });
      let lateRow: { seq: string; xid: string } | undefined;
      const lateAppend = store.append(late, 0, [emailAdded(late, 1)], {
        async project(tx) {
          lateRow = (
            await tx.query<{ seq: string; xid: string }>(
              'SELECT seq::text AS seq, xid::text AS xid FROM events WHERE stream_id = $1',
              [late],
            )
          ).rows[0];
          lateWritten();
          await lateMayCommit;
        },
      });
      await lateIsWritten;
      await store.append(later, 0, [emailAdded(later, 2)]);

      // The race a sequence cursor loses: the later event is committed and visible with a higher
      // sequence number than the open one's, which commits after it.
      const rows = (
        await db.query<{ stream_id: string; seq: string; xid: string }>(
          'SELECT stream_id, seq::text AS seq, xid::text AS xid FROM events WHERE stream_id = ANY($1)',
          [[late, later]],
        )
      ).rows;
      assert.deepEqual(
        rows.map((r) => r.stream_id),
        [later],
        'only the later event is visible',
      );
      assert.ok(lateRow && rows[0]);
      assert.ok(BigInt(lateRow.seq) < BigInt(rows[0].seq), 'the open one took the lower sequence number');
      assert.ok(BigInt(lateRow.xid) < BigInt(rows[0].xid), 'and the lower transaction id');

      // Give the relay many polls (20 ms apart) to go wrong; it must stay before the open transaction.
      await sleep(1000);
      assert.deepEqual(relay.publishedUpTo(), settled, 'the cursor waits for the open transaction');
      assert.deepEqual(
        published.map((e) => e.streamId),
        [early],
      );

      commitLate();
      await lateAppend;
      await relay.waitUntilIdle();
      assert.deepEqual(
        published.map((e) => e.streamId),
        [early, late, later],
        'published in transaction order once the open one committed',
      );
      const messages = await readTopic(kafka.brokers, topic, { count: 3 });
      assert.deepEqual(
        messages.map((m) => m.key),
        [early, late, later],
      );
      assert.equal(await messagesOnTopic(topic), 3);
    });
  }
});
