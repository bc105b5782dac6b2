/**
 * The address events relay on a real database (PGlite, or Postgres with DATABASE_URL) and the
 * in-process bus: a lifting written by the suppression list's own statement is published at once
 * (the outbox trigger's NOTIFY, with the safety-net poll set to a minute), in seq order, and the
 * outbox is emptied; a row the contract cannot carry is set aside without stalling the ones after
 * it; one relay is active at a time and another takes over when it stops.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { type Bus, type Consumer, inProcessBus, type Publisher } from '@sitemail/bus';
import { type AddressEvent, decode, topics } from '@sitemail/contracts';
import { type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { eventually, notificationsDb } from '../../test/harness.ts';
import { liftSuppression } from '../store/suppressions.ts';
import { type AddressEventsRelay, createAddressEventsRelay } from './address-events-relay.ts';

describe(`the address events relay (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let bus: Bus;
  let publisher: Publisher;
  let reader: Consumer;
  const received: AddressEvent[] = [];
  const relays: AddressEventsRelay[] = [];
  const relay = (o: Partial<Parameters<typeof createAddressEventsRelay>[0]> = {}) => {
    const r = createAddressEventsRelay({ db, publisher, pollIntervalMs: 60_000, leaseMs: 1000, ...o });
    relays.push(r);
    return r;
  };
  const list = (address: string) =>
    db.query(
      `INSERT INTO address_suppressions (address, reply, response_code, suppressed_at) VALUES ($1, $2, 550, now())`,
      [address, '550 5.1.1 no such user'],
    );
  const outboxSize = async () =>
    Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM address_events_outbox')).rows[0]!.n);

  before(async () => {
    db = await notificationsDb('address_events_relay');
    bus = inProcessBus();
    publisher = await bus.publisher();
    reader = bus.consumer<AddressEvent>({
      groupId: 'relay-test',
      topics: [topics.notificationsAddressEvents],
      fromBeginning: true,
      decode: (m) => decode(topics.notificationsAddressEvents, m.value),
      deadLetterTopic: 'relay-test.dead-letter',
      handleBatch: async (batch) => {
        received.push(...batch.map((m) => m.value));
      },
    });
    await reader.start();
  });
  beforeEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop()));
    received.length = 0;
  });
  after(async () => {
    await Promise.all(relays.map((r) => r.stop()));
    await reader?.stop();
    await bus?.close();
    await db?.close();
  });

  it('publishes a lifting at once (woken by the commit, not the minute poll) and empties the outbox', async () => {
    const r = relay();
    r.start();
    await eventually(async () => (r.isActive() ? true : undefined), 5000, 'the relay to take the lease');
    await list('alice@example.com');
    const t0 = Date.now();
    assert.ok(
      await liftSuppression(
        db,
        'Alice@Example.com',
        'admin:9c4d5e6f-7081-4c92-9dae-3f4051627384',
        new Date(),
      ),
    );
    const [lifted] = await eventually(
      async () => (received.length > 0 ? received : undefined),
      5000,
      'the event',
    );
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(lifted!.type, 'EmailAddressDeliverable');
    assert.equal(lifted!.address, 'alice@example.com');
    assert.deepEqual(lifted!.data, { cause: 'admin-lifted', deliveryId: null });
    await r.waitUntilIdle();
    assert.equal(await outboxSize(), 0);
  });

  it('keeps seq order, and sets aside a row the contract cannot carry without stalling the rest', async () => {
    const setAside: string[] = [];
    await db.query(
      `INSERT INTO address_events_outbox (address, type, cause, reply, response_code, occurred_at) VALUES
         ('bob@example.com', 'EmailAddressUndeliverable', 'smtp-reply', '550 5.1.1 unknown', 550, now()),
         (E'tab\\there@example.com', 'EmailAddressUndeliverable', 'smtp-reply', '550 5.1.1 unknown', 550, now()),
         ('bob@example.com', 'EmailAddressDeliverable', 'accepted', NULL, NULL, now())`,
    );
    const r = relay({ onSetAside: (row) => setAside.push(row.address) });
    r.start();
    await r.waitUntilIdle();
    await eventually(async () => (received.length >= 2 ? true : undefined), 5000, 'both events');
    assert.deepEqual(
      received.map((e) => `${e.type} ${e.address}`),
      ['EmailAddressUndeliverable bob@example.com', 'EmailAddressDeliverable bob@example.com'],
    );
    assert.ok(received[1]!.position > received[0]!.position);
    assert.deepEqual(setAside, ['tab\there@example.com']);
    assert.equal(await outboxSize(), 0);
  });

  it('one relay is active at a time; when it stops, another takes over', async () => {
    const first = relay({ pollIntervalMs: 100 });
    const second = relay({ pollIntervalMs: 100 });
    first.start();
    await eventually(async () => (first.isActive() ? true : undefined), 5000, 'the first to take the lease');
    second.start();
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(second.isActive(), false, 'the second stands by');
    await first.stop();
    await eventually(async () => (second.isActive() ? true : undefined), 5000, 'the second to take over');
    await list('carol@example.com');
    await liftSuppression(db, 'carol@example.com', 'admin:9c4d5e6f-7081-4c92-9dae-3f4051627384', new Date());
    await eventually(async () =>
      received.some((e) => e.address === 'carol@example.com') ? true : undefined,
    );
  });
});
