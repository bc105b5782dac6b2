import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { OutgoingMessage } from '@sitemail/bus';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import { eventually, RecordingPublisher } from '../test/recording-publisher.ts';
import {
  createEventStore,
  createOutboxRelay,
  type EventStore,
  type OutboxRelayOptions,
  prepareEventStore,
  RelayLeaseLostError,
  type StoredEvent,
} from './index.ts';

const toMessage = (e: StoredEvent): OutgoingMessage => ({
  key: e.streamId,
  value: JSON.stringify({ id: e.id, position: e.position, type: e.type }),
  headers: { ce_id: e.id },
});
const positionsByKey = (messages: OutgoingMessage[]) => {
  const out = new Map<string, number[]>();
  for (const m of messages) {
    const list = out.get(m.key) ?? [];
    list.push((JSON.parse(String(m.value)) as { position: number }).position);
    out.set(m.key, list);
  }
  return out;
};

describe(`outbox relay with an in-process publisher (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let store: EventStore;
  const relays: Array<{ stop(): Promise<void> }> = [];
  before(async () => {
    db = await testDatabase('relay');
    await prepareEventStore(db);
    store = createEventStore(db);
  });
  after(async () => {
    for (const r of relays) await r.stop();
    await db.close();
  });
  const relay = (publisher: RecordingPublisher, extra: Partial<OutboxRelayOptions> = {}) => {
    const r = createOutboxRelay({
      db,
      publisher,
      topic: 'accounts.test',
      toMessage,
      pollIntervalMs: 20,
      retry: { initialMs: 10, maxMs: 50 },
      onError: () => {},
      ...extra,
    });
    relays.push(r);
    return r;
  };
  const appendMany = async (streams: string[], perStream: number, versions: Map<string, number>) => {
    for (let i = 0; i < perStream; i++) {
      for (const s of streams) {
        const v = versions.get(s) ?? 0;
        await store.append(s, v, [{ type: 'T', data: { i } }]);
        versions.set(s, v + 1);
      }
    }
  };

  it('publishes committed events in order, persists its cursor and resumes from it after a restart', async () => {
    const publisher = new RecordingPublisher();
    const name = `restart-${randomUUID()}`;
    const streams = [randomUUID(), randomUUID(), randomUUID()];
    const versions = new Map<string, number>();
    await appendMany(streams, 4, versions);
    const first = relay(publisher, { name, batchSize: 5 });
    first.start();
    await first.waitUntilIdle();
    assert.equal(publisher.published.length, 12);
    await first.stop();
    const cursor = (
      await db.query<{ published: string; owner: string | null }>(
        'SELECT published::text AS published, owner FROM outbox_relays WHERE name = $1',
        [name],
      )
    ).rows[0];
    assert.equal(cursor?.published, '12');
    assert.equal(cursor?.owner, null, 'stop() gives the name up');

    await appendMany(streams, 3, versions); // committed while no relay runs
    const second = relay(publisher, { name, batchSize: 5 });
    second.start();
    await second.waitUntilIdle();
    assert.equal(publisher.published.length, 21, 'nothing published twice, nothing lost');
    const byKey = positionsByKey(publisher.published);
    for (const s of streams) assert.deepEqual(byKey.get(s), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(new Set(publisher.published.map((m) => m.topic)), new Set(['accounts.test']));
    await second.stop();
  });

  it('retries a refusing publisher with backoff and never skips or advances past unacknowledged events', async () => {
    const publisher = new RecordingPublisher();
    const errors: number[] = [];
    const name = `retry-${randomUUID()}`;
    const r = relay(publisher, { name, batchSize: 3, onError: (_e, attempt) => errors.push(attempt) });
    const stream = randomUUID();
    const versions = new Map<string, number>();
    await appendMany([stream], 2, versions);
    r.start();
    await r.waitUntilIdle();
    const before = r.publishedUpTo();
    publisher.refuseNext = 5;
    await appendMany([stream], 7, versions);
    await eventually(() => errors.length >= 3, 'three failed attempts');
    assert.deepEqual(r.publishedUpTo(), before, 'the cursor stays while the bus refuses');
    await r.waitUntilIdle();
    assert.deepEqual(errors, [1, 2, 3, 4, 5]);
    assert.deepEqual(positionsByKey(publisher.published).get(stream), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await r.stop();
  });

  it('keeps one active instance per name; a standby takes over when the active one stops', async () => {
    const name = `single-${randomUUID()}`;
    const pa = new RecordingPublisher();
    const pb = new RecordingPublisher();
    const a = relay(pa, { name });
    const b = relay(pb, { name });
    const other = new RecordingPublisher();
    const c = relay(other, { name: `other-${randomUUID()}` });
    a.start();
    await eventually(() => a.isActive(), 'a to become active');
    b.start();
    c.start();
    const stream = randomUUID();
    const versions = new Map<string, number>();
    await appendMany([stream], 10, versions);
    await b.waitUntilIdle(); // a standby can wait for the active instance
    assert.equal(a.isActive(), true);
    assert.equal(b.isActive(), false);
    assert.equal(positionsByKey(pa.published).get(stream)?.length, 10);
    assert.equal(pb.published.length, 0);
    await a.stop();
    await appendMany([stream], 5, versions);
    await b.waitUntilIdle();
    assert.equal(b.isActive(), true);
    assert.equal(positionsByKey(pa.published).get(stream)?.length, 10);
    assert.deepEqual(positionsByKey(pb.published).get(stream), [11, 12, 13, 14, 15]);
    await c.waitUntilIdle();
    assert.equal(positionsByKey(other.published).get(stream)?.length, 15, 'another name has its own cursor');
    await b.stop();
    await c.stop();
  });

  it('fences an instance whose lease ran out: it cannot move the cursor the new owner moved', async () => {
    const name = `fence-${randomUUID()}`;
    const slow = new RecordingPublisher();
    const errors: unknown[] = [];
    const a = relay(slow, { name, leaseMs: 1000, onError: (e) => errors.push(e) });
    const stream = randomUUID();
    const versions = new Map<string, number>();
    slow.hold();
    a.start();
    await appendMany([stream], 3, versions);
    await eventually(() => slow.heldCalls === 1, 'a publish in flight');
    const fast = new RecordingPublisher();
    const b = relay(fast, { name, leaseMs: 1000 });
    b.start();
    await b.waitUntilIdle(); // b takes the name once a's lease ran out, and publishes
    assert.deepEqual(positionsByKey(fast.published).get(stream), [1, 2, 3]);
    slow.release(); // a's publish finally returns: its cursor move must be refused
    await eventually(
      () => errors.some((e) => e instanceof RelayLeaseLostError),
      'a to notice it lost the lease',
    );
    assert.equal(a.isActive(), false);
    await appendMany([stream], 2, versions);
    await b.waitUntilIdle();
    assert.deepEqual(positionsByKey(fast.published).get(stream), [1, 2, 3, 4, 5]);
    const row = (
      await db.query<{ published: string; total: string }>(
        'SELECT published::text AS published, (SELECT count(*) FROM events)::text AS total FROM outbox_relays WHERE name = $1',
        [name],
      )
    ).rows[0];
    assert.equal(row?.published, row?.total, 'only the owner moved the cursor, once per event');
    assert.equal(String(fast.published.length), row?.total);
    await a.stop();
    await b.stop();
  });

  it('stops within stopTimeoutMs even when the batch in hand hangs, and finishes it in the background', async () => {
    const name = `stop-${randomUUID()}`;
    const hanging = new RecordingPublisher();
    const errors: Array<[unknown, number]> = [];
    const r = relay(hanging, {
      name,
      stopTimeoutMs: 200,
      onError: (e, attempt) => errors.push([e, attempt]),
    });
    hanging.hold();
    r.start();
    const stream = randomUUID();
    await appendMany([stream], 1, new Map());
    await eventually(() => hanging.heldCalls === 1, 'a publish in flight');
    await r.stop();
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.[1], 0);
    assert.match(String(errors[0]?.[0]), /not acknowledged within 200 ms/);
    const row = async () =>
      (
        await db.query<{ owner: string | null; published: string }>(
          'SELECT owner, published::text AS published FROM outbox_relays WHERE name = $1',
          [name],
        )
      ).rows[0];
    assert.notEqual((await row())?.owner, null, 'still owned while the batch is in flight');
    hanging.release();
    await eventually(async () => (await row())?.owner === null, 'the name to be given up');
    assert.notEqual((await row())?.published, '0', 'the acknowledged batch moved the cursor');
  });

  it('orders by transaction id as a number, not as text (99 before 100)', async () => {
    const fresh = await testDatabase('relay_order');
    try {
      await prepareEventStore(fresh);
      // Rows as transactions 100 and 99 would have written them (both long committed).
      for (const [xid, stream] of [
        ['100', 'b'],
        ['99', 'a'],
      ]) {
        await fresh.query(
          `INSERT INTO events (event_id, stream_id, position, type, data, time, schema_version, xid)
           VALUES ($1, $2, 1, 'T', '{}', now(), 1, $3::xid8)`,
          [randomUUID(), stream, xid],
        );
      }
      const publisher = new RecordingPublisher();
      const r = createOutboxRelay({
        db: fresh,
        publisher,
        topic: 't',
        toMessage,
        pollIntervalMs: 20,
        onError: () => {},
      });
      r.start();
      await r.waitUntilIdle();
      await r.stop();
      assert.deepEqual(
        publisher.published.map((m) => m.key),
        ['a', 'b'],
      );
      assert.equal(r.publishedUpTo()?.xid, '100');
    } finally {
      await fresh.close();
    }
  });

  it('refuses to wait on a relay that is not running, and rejects bad options naming them', async () => {
    const r = createOutboxRelay({ db, publisher: new RecordingPublisher(), topic: 't', toMessage });
    await assert.rejects(r.waitUntilIdle(), /not running/);
    assert.throws(
      () =>
        createOutboxRelay({ db, publisher: new RecordingPublisher(), topic: 't', toMessage, batchSize: 0 }),
      /batchSize/,
    );
    assert.throws(
      () => createOutboxRelay({ db, publisher: new RecordingPublisher(), topic: '', toMessage }),
      /topic/,
    );
  });
});
