/**
 * Provider side of the accounts ← notifications message pact: every message of the committed pact
 * (contracts/pacts/accounts-notifications.json) is produced by notifications' REAL code path on a
 * real database (Postgres with DATABASE_URL, else PGlite): the events of the recipient handled by
 * `handleEvent`, the delivery claimed and its outcome recorded by the worker's own statements
 * (`claimDueDeliveries`, `recordOutcomes`, which list or lift the address and write the outbox row
 * in one statement), a DSN by `recordBounces`, an admin's lifting by `liftSuppression`; then the
 * outbox row read as the relay reads it and turned into the Kafka message by the very function the
 * relay uses (`toAddressEventMessage`). No fixture is involved.
 *
 * The second suite proves the verification has teeth: a message builder with one field broken
 * fails and names the field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MessageProviderPact, type MessageProviders, type MessageStateHandlers } from '@pact-foundation/pact';
import type { OutgoingMessage } from '@sitemail/bus';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { handleEvent } from '@sitemail/notifications';
import type { TestDatabase } from '@sitemail/testkit';
import {
  type AddressEventRow,
  toAddressEventMessage,
} from '../../services/notifications/src/fleet/address-events.ts';
import { readOutbox } from '../../services/notifications/src/store/address-events-outbox.ts';
import { recordBounces } from '../../services/notifications/src/store/bounces.ts';
import { claimDueDeliveries, recordOutcomes } from '../../services/notifications/src/store/queue.ts';
import { liftSuppression } from '../../services/notifications/src/store/suppressions.ts';
import { Stream } from '../../services/notifications/test/events.ts';
import { notificationsDb, siteFor } from '../../services/notifications/test/harness.ts';
import { KEY_METADATA, messages, PACT_FILE, PROVIDER, type ProviderState, states } from './address-pact.ts';

type MessageBuilder = (row: AddressEventRow) => OutgoingMessage;

const WORKER = 'pact-provider';
const site = siteFor({ host: '127.0.0.1', port: 2525 });
let db: TestDatabase;
let seq = 0;

/** A recipient with a verified address whose API-key email is queued; answers the address. */
async function queuedProductEmail(): Promise<string> {
  seq += 1;
  const address = `pact${seq}@example.com`;
  const user = new Stream();
  await handleEvent(
    db,
    user.created({ email: address, verified: true, username: `pact${seq}` }),
    site,
    new Date(),
  );
  await handleEvent(
    db,
    user.apiKeyCreated('deploy', apiKeySecretSha256(`sitemail_pact-${seq}`)),
    site,
    new Date(),
  );
  return address;
}

/** The worker's claim and outcome for every queued delivery, as it records them. */
async function sendAll(outcome: 'refused' | 'accepted'): Promise<string[]> {
  const now = new Date();
  const claimed = await claimDueDeliveries(db, { worker: WORKER, limit: 50, now, claimMs: 60_000 });
  assert.ok(claimed.length > 0, 'a delivery was queued');
  await recordOutcomes(
    db,
    WORKER,
    claimed.map((delivery) =>
      outcome === 'accepted'
        ? {
            delivery,
            status: 'sent' as const,
            startedAt: now,
            finishedAt: now,
            response: '250 2.0.0 Ok: queued',
          }
        : {
            delivery,
            status: 'failed' as const,
            startedAt: now,
            finishedAt: now,
            error: `550 5.1.1 <${delivery.to}>: Recipient address rejected: User unknown`,
            step: 'rcpt',
            responseCode: 550,
            replyScope: 'address',
            failureReason: 'rejected' as const,
          },
    ),
  );
  return claimed.map((d) => d.id);
}

/** Puts notifications in each provider state through its own code. */
const setUp: Record<ProviderState, () => Promise<void>> = {
  [states.refusedAtRcpt]: async () => {
    await queuedProductEmail();
    await sendAll('refused');
  },
  [states.bouncedLater]: async () => {
    const address = await queuedProductEmail();
    const [deliveryId] = await sendAll('accepted');
    await recordBounces(
      db,
      [
        {
          deliveryId: deliveryId!,
          reportKey: `pact-${deliveryId}`,
          action: 'failed',
          status: '5.1.1',
          finalRecipient: address,
          diagnosticCode: 'smtp; 550 5.1.1 User unknown',
          remoteMta: 'dns; mx.example.com',
          reportingMta: 'dns; relay.example.net',
          originalEnvelopeId: null,
          replyScope: 'address',
          bounces: true,
          error: `550 5.1.1 <${address}>: Recipient address rejected: User unknown`,
          responseCode: 550,
        },
      ],
      'admin:pact',
      new Date(),
    );
  },
  [states.liftedByAdmin]: async () => {
    const address = await queuedProductEmail();
    await sendAll('refused');
    assert.ok(await liftSuppression(db, address, 'admin:9c4d5e6f-7081-4c92-9dae-3f4051627384', new Date()));
  },
  [states.acceptedAgain]: async () => {
    const address = await queuedProductEmail();
    await sendAll('refused');
    // A verification email is still tried to a listed address; accepted, it lifts the entry.
    const user = new Stream();
    await handleEvent(
      db,
      user.created({ email: `other${seq}@example.com`, verified: true }),
      site,
      new Date(),
    );
    await handleEvent(db, user.next('EmailAdded', { email: address }), site, new Date());
    await handleEvent(db, user.verificationRequested(address, `pact-verify-${seq}`), site, new Date());
    await sendAll('accepted');
  },
};

/** The outbox read by the relay's own statement, oldest first. */
const outbox = (): Promise<AddressEventRow[]> => readOutbox(db, 10_000);

const stateHandlers: MessageStateHandlers = Object.fromEntries(
  Object.entries(setUp).map(([state, run]) => [
    state,
    async () => {
      await db.query('DELETE FROM address_events_outbox');
      await run();
    },
  ]),
);

/** For each message of the pact, the newest outbox row of its type and cause, as the relay would publish it. */
function providers(build: MessageBuilder): MessageProviders {
  return Object.fromEntries(
    Object.values(messages).map((m) => [
      m.description,
      async () => {
        const row = (await outbox()).findLast((r) => r.type === m.type && r.cause === m.cause);
        assert.ok(row, `state "${m.state}" wrote no ${m.type} (${m.cause})`);
        const wire = build(row);
        return {
          __pactMessageMetadata: { ...wire.headers, [KEY_METADATA]: wire.key },
          message: JSON.parse(String(wire.value)),
        };
      },
    ]),
  );
}

/** The relay's own builder: a row the contract cannot carry fails here rather than being set aside. */
const relayBuilder: MessageBuilder = (row) => {
  const built = toAddressEventMessage(row);
  assert.ok(built.ok, built.ok ? '' : built.problems.join('; '));
  return built.message;
};

const verify = (pactUrl: string, build: MessageBuilder) =>
  new MessageProviderPact({
    provider: PROVIDER,
    pactUrls: [pactUrl],
    logLevel: 'error',
    stateHandlers,
    messageProviders: providers(build),
  }).verify();

before(async () => {
  db = await notificationsDb('pact_notifications_provider');
});
after(async () => {
  await db?.close();
});

describe('accounts ← notifications message pact (provider)', () => {
  it('notifications produces every message of the committed pact', async () => {
    await verify(PACT_FILE, relayBuilder);
  });

  it('keys each event by its address, and its position grows with each event about it', async () => {
    await stateHandlers[states.liftedByAdmin]!(states.liftedByAdmin);
    const rows = await outbox();
    assert.deepEqual(
      rows.map((r) => [r.type, r.cause]),
      [
        ['EmailAddressUndeliverable', 'smtp-reply'],
        ['EmailAddressDeliverable', 'admin-lifted'],
      ],
    );
    const [listed, lifted] = rows.map(relayBuilder);
    assert.equal(listed!.key, rows[0]!.address);
    assert.equal(lifted!.key, rows[0]!.address);
    const position = (m: OutgoingMessage) => (JSON.parse(String(m.value)) as { position: number }).position;
    assert.ok(position(lifted!) > position(listed!));
  });
});

describe('a broken field in notifications’ message builder fails the provider verification', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-notifications-provider-broken-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  function pactWith(description: string): string {
    const pact = JSON.parse(readFileSync(PACT_FILE, 'utf8')) as { messages: { description: string }[] };
    pact.messages = pact.messages.filter((m) => m.description === description);
    assert.equal(pact.messages.length, 1, `the pact has a message "${description}"`);
    const file = join(dir, `${description.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(pact));
    return file;
  }

  const breaking =
    (mutate: (body: Record<string, unknown> & { data: Record<string, unknown> }) => void): MessageBuilder =>
    (row) => {
      const wire = relayBuilder(row);
      const body = JSON.parse(String(wire.value));
      mutate(body);
      return { ...wire, value: JSON.stringify(body) };
    };

  const cases: { name: string; description: string; build: MessageBuilder; mismatch: RegExp }[] = [
    {
      name: 'EmailAddressUndeliverable with the reply code as text',
      description: messages.undeliverableSmtp.description,
      build: breaking((b) => {
        (b.data.reply as Record<string, unknown>).code = '550';
      }),
      mismatch: /code/,
    },
    {
      name: 'EmailAddressDeliverable with another cause',
      description: messages.liftedByAdmin.description,
      build: breaking((b) => {
        b.data.cause = 'lifted';
      }),
      mismatch: /cause/,
    },
    {
      name: 'EmailAddressUndeliverable keyed by something else',
      description: messages.undeliverableDsn.description,
      build: (row) => ({ ...relayBuilder(row), key: 'Not An Address' }),
      mismatch: /kafka_key/,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      await assert.rejects(verify(pactWith(c.description), c.build), (err: unknown) => {
        assert.match(String((err as Error).message ?? err), c.mismatch);
        return true;
      });
    });
  }

  it('and the same cut-down pact passes against the real builder (the cases fail for their break only)', async () => {
    await verify(pactWith(messages.undeliverableSmtp.description), relayBuilder);
  });
});
