/**
 * Consumer side of the accounts ← notifications message pact (issue 11 item 6: the contracts run
 * both ways). Each interaction states, with matchers, what accounts relies on in one address event
 * of notifications.address-events.v1 (body, CloudEvents headers and the Kafka key), and runs
 * accounts' REAL code on the example message: its decoding (`decodeAddressEventMessage`: schema,
 * topic authority, ce_type) and its handler (`recordAddressEvents`) on a real database (Postgres
 * with DATABASE_URL, else PGlite), then reads the address back as the user's addresses show it.
 *
 * As the notifications ← accounts pair: generated into a temporary directory, then written to
 * contracts/pacts; with `CI` set a generated pact that differs from the committed one fails.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { type ConcreteMessage, MatchersV3, MessageConsumerPact, type Metadata } from '@pact-foundation/pact';
import { prepareAccountsDatabase } from '@sitemail/accounts';
import type { BusMessage } from '@sitemail/bus';
import { type AddressEventType, sources, topics } from '@sitemail/contracts';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import {
  decodeAddressEventMessage,
  recordAddressEvents,
} from '../../services/accounts/src/application/address-events.ts';
import { undeliverableAmong } from '../../services/accounts/src/store/deliverability.ts';
import {
  type AddressPactMessage,
  CONSUMER,
  KEY_METADATA,
  messages,
  PACT_DIR,
  PACT_FILE,
  PROVIDER,
} from './address-pact.ts';

const { like, regex, integer } = MatchersV3;

const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
// Lower-cased: accounts keys its rows by the address as user_emails holds it.
const ADDRESS = '^[^@A-Z\\s]+@[^@A-Z\\s]+$';
const ENHANCED = '^[245]\\.\\d{1,3}\\.\\d{1,3}$';
const uuid = (example: string) => regex(UUID, example);
const time = (example: string) => regex(TIME, example);

// Fixed examples, so the generated pact only changes when the expectations do.
const EVENT_ID = 'd3e4f5a6-b7c8-4d9e-8f0a-1b2c3d4e5f60';
const DELIVERY_ID = 'e4f5a6b7-c8d9-4e0f-9a1b-2c3d4e5f6071';
const TIME_EXAMPLE = '2026-12-01T10:00:00.000Z';
const ADDRESS_EXAMPLE = 'alice@example.com';

const envelope = (type: AddressEventType, position: number, data: Record<string, unknown>) => ({
  id: uuid(EVENT_ID),
  type,
  address: regex(ADDRESS, ADDRESS_EXAMPLE),
  position: integer(position),
  time: time(TIME_EXAMPLE),
  schemaVersion: 1,
  data,
});

/** The CloudEvents headers and the Kafka key (the address: accounts relies on per-address order). */
const wireMetadata = (type: AddressEventType): Metadata => ({
  [KEY_METADATA]: regex(ADDRESS, ADDRESS_EXAMPLE),
  ce_specversion: '1.0',
  ce_id: uuid(EVENT_ID),
  ce_type: type,
  ce_source: sources.notifications,
  ce_time: time(TIME_EXAMPLE),
  ce_schemaversion: '1',
  'content-type': 'application/json',
});

let db: TestDatabase;

/** accounts receiving one message, through its real decoding and handler. */
async function receive(message: ConcreteMessage) {
  const metadata = (message.metadata ?? {}) as Record<string, string>;
  const busMessage: BusMessage = {
    topic: topics.notificationsAddressEvents,
    partition: 0,
    offset: '0',
    key: metadata[KEY_METADATA] ?? null,
    value: Buffer.from(JSON.stringify(message.contents)),
    headers: metadata,
    timestamp: Date.parse(TIME_EXAMPLE),
  };
  const event = decodeAddressEventMessage(busMessage);
  assert.ok(event, 'a known event type, not skipped');
  assert.equal(busMessage.key, event.address, 'the Kafka key is the address');
  assert.equal(metadata.ce_id, event.id, 'ce_id is the event id');
  await recordAddressEvents(db, [event]);
  const shown = await undeliverableAmong(db, [event.address]);
  return { event, shown: shown.get(event.address) ?? null };
}

/** An earlier listing of the address, of accounts' own making, for the liftings to clear. */
async function listedBefore(address: string, position: number) {
  await recordAddressEvents(db, [
    {
      id: '00000000-0000-4000-8000-000000000001',
      type: 'EmailAddressUndeliverable',
      address,
      position,
      time: TIME_EXAMPLE,
      schemaVersion: 1,
      data: {
        cause: 'smtp-reply',
        reply: { code: 550, enhancedStatus: '5.1.1', text: '550 5.1.1 no such user' },
        deliveryId: null,
      },
    },
  ]);
  assert.ok((await undeliverableAmong(db, [address])).has(address));
}

interface Expectation {
  message: AddressPactMessage;
  content: Record<string, unknown>;
  metadata: Metadata;
  handle(m: ConcreteMessage): Promise<void>;
}

const undeliverable = (cause: 'smtp-reply' | 'dsn') => ({
  cause,
  reply: {
    code: integer(550),
    enhancedStatus: regex(ENHANCED, '5.1.1'),
    text: like('550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown'),
  },
  deliveryId: uuid(DELIVERY_ID),
});

const expectations: Expectation[] = [
  {
    message: messages.undeliverableSmtp,
    content: envelope('EmailAddressUndeliverable', 41, undeliverable('smtp-reply')),
    metadata: wireMetadata('EmailAddressUndeliverable'),
    async handle(m) {
      const { event, shown } = await receive(m);
      assert.deepEqual(shown, {
        status: 'undeliverable',
        since: event.time,
        cause: 'smtp-reply',
        reply: {
          code: 550,
          enhancedStatus: '5.1.1',
          text: '550 5.1.1 <alice@example.com>: Recipient address rejected: User unknown',
        },
      });
    },
  },
  {
    message: messages.undeliverableDsn,
    content: envelope('EmailAddressUndeliverable', 43, undeliverable('dsn')),
    metadata: wireMetadata('EmailAddressUndeliverable'),
    async handle(m) {
      const { shown } = await receive(m);
      assert.equal(shown?.status, 'undeliverable');
      assert.equal(shown?.cause, 'dsn');
    },
  },
  {
    message: messages.liftedByAdmin,
    content: envelope('EmailAddressDeliverable', 44, { cause: 'admin-lifted', deliveryId: null }),
    metadata: wireMetadata('EmailAddressDeliverable'),
    async handle(m) {
      await listedBefore(ADDRESS_EXAMPLE, 1);
      const { shown } = await receive(m);
      assert.equal(shown, null, 'the lifting clears the address');
    },
  },
  {
    message: messages.acceptedAgain,
    content: envelope('EmailAddressDeliverable', 45, { cause: 'accepted', deliveryId: uuid(DELIVERY_ID) }),
    metadata: wireMetadata('EmailAddressDeliverable'),
    async handle(m) {
      await listedBefore(ADDRESS_EXAMPLE, 2);
      const { shown } = await receive(m);
      assert.equal(shown, null, 'the lifting clears the address');
    },
  },
];

/** Normalises a pact file for comparison: the tool versions in its metadata do not matter. */
function pactInteractions(file: string): unknown {
  const pact = JSON.parse(readFileSync(file, 'utf8')) as {
    messages: unknown;
    consumer: unknown;
    provider: unknown;
  };
  return { consumer: pact.consumer, provider: pact.provider, messages: pact.messages };
}

before(async () => {
  db = await testDatabase('pact_accounts_consumer');
  await prepareAccountsDatabase(db);
});
after(async () => {
  await db?.close();
});

/** Each interaction starts from an empty read model (positions are per address). */
const reset = () => db.query('DELETE FROM address_deliverability');

describe('accounts ← notifications message pact (consumer)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-accounts-consumer-'));
  const generated = join(dir, `${CONSUMER}-${PROVIDER}.json`);
  const pact = new MessageConsumerPact({ consumer: CONSUMER, provider: PROVIDER, dir, logLevel: 'error' });
  let failures = 0;
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const e of expectations) {
    it(`${e.message.description} (given ${e.message.state})`, async () => {
      failures += 1;
      await reset();
      await pact
        .given(e.message.state)
        .expectsToReceive(e.message.description)
        .withContent(e.content)
        .withMetadata(e.metadata)
        .verify(async (m) => e.handle(m));
      failures -= 1;
    });
  }

  it('covers both address event types', () => {
    const covered = new Set(expectations.map((e) => e.message.type));
    assert.deepEqual([...covered].sort(), ['EmailAddressDeliverable', 'EmailAddressUndeliverable']);
  });

  it('writes the pact to contracts/pacts (in CI: it must equal the committed pact)', () => {
    assert.equal(failures, 0, 'an interaction failed: the pact is not written');
    assert.ok(existsSync(generated), 'the pact file was generated');
    const previous = existsSync(PACT_FILE) ? pactInteractions(PACT_FILE) : undefined;
    const changed = previous === undefined || !isDeepStrictEqual(previous, pactInteractions(generated));
    if (changed && process.env.CI) {
      assert.fail(
        `${PACT_FILE} is not what the consumer test generates: run \`node scripts/run-tests.mjs test/contract\` locally and commit the pact`,
      );
    }
    mkdirSync(PACT_DIR, { recursive: true });
    writeFileSync(PACT_FILE, readFileSync(generated));
  });
});

describe('a pact that leaves out what accounts relies on fails the consumer test', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-accounts-consumer-broken-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const smtp = expectations[0]!;
  const cases: { name: string; content?: Record<string, unknown>; metadata?: Metadata; error: RegExp }[] = [
    {
      name: 'EmailAddressUndeliverable without data.reply',
      content: { ...smtp.content, data: { cause: 'smtp-reply', deliveryId: uuid(DELIVERY_ID) } },
      error: /field \/data\/reply must have required properties reply/,
    },
    {
      name: 'EmailAddressUndeliverable from another source',
      metadata: { ...smtp.metadata, ce_source: sources.accounts },
      error: /carries events from \/services\/notifications only/,
    },
    {
      name: 'EmailAddressUndeliverable without the Kafka key',
      metadata: Object.fromEntries(Object.entries(smtp.metadata).filter(([k]) => k !== KEY_METADATA)),
      error: /the Kafka key is the address/,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await reset();
      const broken = new MessageConsumerPact({
        consumer: CONSUMER,
        provider: PROVIDER,
        dir,
        logLevel: 'error',
      });
      await assert.rejects(
        broken
          .given(smtp.message.state)
          .expectsToReceive(smtp.message.description)
          .withContent(c.content ?? smtp.content)
          .withMetadata(c.metadata ?? smtp.metadata)
          .verify(async (m) => smtp.handle(m)),
        c.error,
      );
    });
  }
});
