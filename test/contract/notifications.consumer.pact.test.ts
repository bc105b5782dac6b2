/**
 * Consumer side of the notifications ← accounts message pact. Each interaction states, with
 * matchers, the fields notifications relies on in one accounts event (body, CloudEvents headers
 * and the Kafka key), and runs notifications' REAL code on the example message: the consumer's
 * decoding (`decodeFleetMessage`, schema validation included), the recipient projection
 * (`evolveRecipient`), the verified-primary-email policy (`decideNotifications`) and the templates
 * (`renderEmail`, which opens the sealed link token). A pact missing a field the decoder or the
 * policy needs cannot pass.
 *
 * The pact is generated into a temporary directory and then written to contracts/pacts. In CI
 * (`CI` set) a generated pact that differs from the committed one fails the test: the committed
 * file is what accounts is verified against, so it must be the consumer's current expectations.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { type ConcreteMessage, MatchersV3, MessageConsumerPact, type Metadata } from '@pact-foundation/pact';
import type { BusMessage } from '@sitemail/bus';
import {
  type AccountsEvent,
  type AccountsEventOf,
  type AccountsEventType,
  type FleetEvent,
  parseLinkTokenKey,
  type SealedToken,
  sources,
  topics,
} from '@sitemail/contracts';
import {
  type Decision,
  decideNotifications,
  decodeFleetMessage,
  evolveRecipient,
  findAddress,
  type Recipient,
  type RenderedEmail,
  recipientUserIdFor,
  renderEmail,
} from '@sitemail/notifications';
import { staticSiteConfig } from '@sitemail/site-config';
import { CONSUMER, KEY_METADATA, messages, PACT_DIR, PACT_FILE, type PactMessage, PROVIDER } from './pact.ts';

const { like, regex, integer, boolean } = MatchersV3;

const UUID = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
const TIME = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$';
const EMAIL = '^[^@\\s]+@[^@\\s]+$';
const uuid = (example: string) => regex(UUID, example);
const time = (example: string) => regex(TIME, example);
const email = (example: string) => regex(EMAIL, example);

// Fixed examples, so the generated pact only changes when the expectations do.
const USER = '6f1c2a3b-4d5e-4f60-8a1b-2c3d4e5f6071';
const INVITER = '7a2b3c4d-5e6f-4a70-9b8c-1d2e3f405162';
const INVITEE = '8b3c4d5e-6f70-4b81-8c9d-2e3f40516273';
const ADMIN = '9c4d5e6f-7081-4c92-9dae-3f4051627384';
const EVENT_ID = 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d';
const KEY_ID = 'b1c2d3e4-f5a6-4b7c-9d8e-0f1a2b3c4d5e';
const INVITATION_ID = 'c2d3e4f5-a6b7-4c8d-8e9f-1a2b3c4d5e6f';
const TIME_EXAMPLE = '2026-11-25T10:00:00.000Z';
const EXPIRES_EXAMPLE = '2026-11-26T10:00:00.000Z';
const SECRET_SHA256 = '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08';

/** The key the example tokens below were sealed with (bound to their user id and event type). */
const pactLinkKey = parseLinkTokenKey(`kpact:${Buffer.alloc(32, 5).toString('base64')}`);
const sealedExamples: Record<
  'EmailVerificationRequested' | 'PasswordSetLinkRequested' | 'PasswordResetRequested' | 'UserInvited',
  SealedToken
> = {
  EmailVerificationRequested: {
    alg: 'A256GCM',
    kid: 'kpact',
    iv: 'Jb95ws5P8pJVcKWv',
    ciphertext: 'dnhMz18SpQhdzt3y6VAwx8-l7ZD_uccOVcI3MLlm4k82FoySJR9N',
    tag: 'tKrEWi9yq_SEhw-kDesLBA',
  },
  PasswordSetLinkRequested: {
    alg: 'A256GCM',
    kid: 'kpact',
    iv: 'fH4kWDZK02XRZa69',
    ciphertext: '7JQkRJQh7zGjGg5XpoNYQmLrgZ6R2zkxN0JPkTqPHkwKbBM-Yg',
    tag: 'Vt2pdJkJINWFp8HfnpJTNg',
  },
  PasswordResetRequested: {
    alg: 'A256GCM',
    kid: 'kpact',
    iv: 's7Kr6x08uPZY0ilt',
    ciphertext: '4kv_nkXZJz9m8fL0ZJAGZ-Vj8AAZ-2laUZIUowFkmLuYjCE',
    tag: '0zyyXsOtGxpwYuhIdY7vHA',
  },
  UserInvited: {
    alg: 'A256GCM',
    kid: 'kpact',
    iv: 'VN_IGhtq9MeHzgdq',
    ciphertext: 'XDAjBmmmLRIX3fctvF8V4mGp9a3LEE-4',
    tag: 'ulf1REov61t6taunYjXb6g',
  },
};

/** A sealed link token as notifications opens it: the algorithm exactly, the parts by shape. */
const sealedToken = (example: SealedToken) => ({
  alg: 'A256GCM',
  kid: like(example.kid),
  iv: regex('^[A-Za-z0-9_-]{16}$', example.iv),
  ciphertext: regex('^[A-Za-z0-9_-]+$', example.ciphertext),
  tag: regex('^[A-Za-z0-9_-]{22}$', example.tag),
});

/** The envelope every accounts event carries; the type is exact, everything else by shape. */
const envelope = (
  type: AccountsEventType,
  userId: string,
  position: number,
  data: Record<string, unknown>,
) => ({
  id: uuid(EVENT_ID),
  type,
  userId: uuid(userId),
  position: integer(position),
  time: time(TIME_EXAMPLE),
  schemaVersion: 1,
  data,
});

/** The CloudEvents headers of the fleet and the Kafka key (the user id: notifications relies on per-user order). */
const wireMetadata = (type: AccountsEventType, userId: string): Metadata => ({
  [KEY_METADATA]: uuid(userId),
  ce_specversion: '1.0',
  ce_id: uuid(EVENT_ID),
  ce_type: type,
  ce_source: sources.accounts,
  ce_time: time(TIME_EXAMPLE),
  ce_schemaversion: '1',
  'content-type': 'application/json',
});

const site = staticSiteConfig({
  externalURL: 'https://sourcegraph.example.com',
  'email.senderName': 'Example Instance',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }, { type: 'github' }],
}).current();

/** What notifications knew before the message: its own projection, fed with events of its own making. */
class Known {
  private position = 0;
  private readonly events: AccountsEvent[] = [];
  constructor(readonly userId: string) {}
  add<K extends AccountsEventType>(type: K, data: AccountsEventOf<K>['data']): this {
    this.position += 1;
    this.events.push({
      id: `00000000-0000-4000-8000-${String(this.position).padStart(12, '0')}`,
      type,
      userId: this.userId,
      position: this.position,
      time: TIME_EXAMPLE,
      schemaVersion: 1,
      data,
    } as AccountsEventOf<K>);
    return this;
  }
  user(address: string, verified: boolean, username = 'alice'): this {
    return this.add('UserCreated', {
      username,
      email: address,
      emailVerified: verified,
      origin: verified ? 'external-provider' : 'builtin-signup',
      authProvider: { type: verified ? 'github' : 'builtin' },
      siteAdmin: false,
    });
  }
  recipient(): Recipient | undefined {
    return this.events.reduce<Recipient | undefined>(evolveRecipient, undefined);
  }
}

interface Received {
  event: AccountsEvent;
  /** The event's user as notifications' projection has it once the event is applied. */
  recipient: Recipient | undefined;
  decisions: Decision[];
  /** Every email notifications would send, rendered (sealed links opened). */
  emails: { to: string; kind: string; rendered: RenderedEmail }[];
}

/**
 * notifications receiving one message, through its real decoding, projection, policy and
 * templates. `known` is what it knew of the event's user before; `invitee` of an invited user.
 */
function receive(message: ConcreteMessage, known: Known, invitee?: Known): Received {
  const metadata = (message.metadata ?? {}) as Record<string, string>;
  const busMessage: BusMessage = {
    topic: topics.accountsEvents,
    partition: 0,
    offset: '0',
    key: metadata[KEY_METADATA] ?? null,
    value: Buffer.from(JSON.stringify(message.contents)),
    headers: metadata,
    timestamp: Date.parse(TIME_EXAMPLE),
  };
  const decoded: FleetEvent = decodeFleetMessage(busMessage);
  assert.notEqual(decoded.type, 'CodeMonitorTriggered');
  const event = decoded as AccountsEvent;
  // The projection is only right if a user's events arrive in order, which the key guarantees.
  assert.equal(busMessage.key, event.userId, 'the Kafka key is the user id');
  assert.equal(metadata.ce_id, event.id, 'ce_id is the event id');
  assert.equal(metadata.ce_type, event.type, 'ce_type is the event type');

  const recipient = evolveRecipient(known.recipient(), event);
  const recipientId = recipientUserIdFor(event);
  const policyRecipient = recipientId === event.userId ? recipient : invitee?.recipient();
  const decisions = decideNotifications(event, policyRecipient, site);
  const emails = decisions.flatMap((d) =>
    d.kind === 'send'
      ? [{ to: d.to, kind: d.email, rendered: renderEmail(d.message, { site, linkTokenKeys: pactLinkKey }) }]
      : [],
  );
  return { event, recipient, decisions, emails };
}

const summary = (ds: Decision[]) =>
  ds.map((d) => (d.kind === 'send' ? `send ${d.email} to ${d.to}` : `suppress ${d.email}: ${d.reason}`));

/** One interaction of the pact: the message notifications expects, and what it must do with it. */
interface Expectation {
  message: PactMessage;
  content: Record<string, unknown>;
  metadata: Metadata;
  handle(m: ConcreteMessage): void;
}

const expectations: Expectation[] = [
  {
    message: messages.userCreatedBuiltin,
    content: envelope('UserCreated', USER, 1, {
      username: like('alice'),
      email: email('alice@example.com'),
      emailVerified: false,
      origin: 'builtin-signup',
      authProvider: { type: 'builtin' },
      siteAdmin: boolean(false),
    }),
    metadata: wireMetadata('UserCreated', USER),
    handle(m) {
      const { recipient, decisions } = receive(m, new Known(USER));
      assert.deepEqual(decisions, [], 'the verification email is its own event');
      assert.equal(recipient?.primaryEmail, 'alice@example.com');
      assert.deepEqual(recipient?.addresses, [{ email: 'alice@example.com', verified: false }]);
      assert.equal(recipient?.authProvider, 'builtin');
    },
  },
  {
    message: messages.verificationRequested,
    content: envelope('EmailVerificationRequested', USER, 2, {
      email: email('alice@example.com'),
      token: sealedToken(sealedExamples.EmailVerificationRequested),
      expiresAt: time(EXPIRES_EXAMPLE),
    }),
    metadata: wireMetadata('EmailVerificationRequested', USER),
    handle(m) {
      const { decisions, emails } = receive(m, new Known(USER).user('alice@example.com', false));
      assert.deepEqual(summary(decisions), ['send email-verification to alice@example.com']);
      assert.match(emails[0]!.rendered.text, /https:\/\/sourcegraph\.example\.com\/-\/verify-email\?/);
      assert.match(emails[0]!.rendered.text, /pact-example-EmailVerificationRequested/);
    },
  },
  {
    message: messages.userCreatedExternal,
    content: envelope('UserCreated', USER, 1, {
      username: like('alice'),
      email: email('alice@example.com'),
      emailVerified: true,
      origin: 'external-provider',
      authProvider: { type: like('github'), externalId: like('12345') },
      siteAdmin: boolean(false),
    }),
    metadata: wireMetadata('UserCreated', USER),
    handle(m) {
      const { recipient, decisions } = receive(m, new Known(USER));
      assert.deepEqual(decisions, []);
      assert.deepEqual(recipient?.addresses, [{ email: 'alice@example.com', verified: true }]);
      assert.equal(recipient?.authProvider, 'github');
    },
  },
  {
    message: messages.setPasswordLink,
    content: envelope('PasswordSetLinkRequested', USER, 2, {
      email: email('alice@example.com'),
      token: sealedToken(sealedExamples.PasswordSetLinkRequested),
      expiresAt: time(EXPIRES_EXAMPLE),
    }),
    metadata: wireMetadata('PasswordSetLinkRequested', USER),
    handle(m) {
      const { decisions, emails } = receive(m, new Known(USER).user('alice@example.com', false));
      assert.deepEqual(summary(decisions), ['send set-password to alice@example.com']);
      assert.match(emails[0]!.rendered.text, /\/password-reset\?/);
      assert.match(emails[0]!.rendered.text, /pact-example-PasswordSetLinkRequested/);
    },
  },
  {
    message: messages.emailAdded,
    content: envelope('EmailAdded', USER, 2, { email: email('alice@work.example.com') }),
    metadata: wireMetadata('EmailAdded', USER),
    handle(m) {
      const { recipient, decisions } = receive(m, new Known(USER).user('alice@example.com', true));
      assert.deepEqual(decisions, []);
      assert.deepEqual(recipient && findAddress(recipient, 'alice@work.example.com'), {
        email: 'alice@work.example.com',
        verified: false,
      });
      assert.equal(recipient?.primaryEmail, 'alice@example.com');
    },
  },
  {
    message: messages.emailVerified,
    content: envelope('EmailVerified', USER, 4, {
      email: email('alice@work.example.com'),
      method: 'verification-link',
    }),
    metadata: wireMetadata('EmailVerified', USER),
    handle(m) {
      const known = new Known(USER)
        .user('alice@example.com', true)
        .add('EmailAdded', { email: 'alice@work.example.com' });
      const { recipient, decisions } = receive(m, known);
      assert.deepEqual(decisions, []);
      assert.equal(recipient && findAddress(recipient, 'alice@work.example.com')?.verified, true);
    },
  },
  {
    message: messages.emailUnverified,
    content: envelope('EmailUnverified', USER, 2, { email: email('alice@example.com'), by: uuid(ADMIN) }),
    metadata: wireMetadata('EmailUnverified', USER),
    handle(m) {
      const { recipient, decisions } = receive(m, new Known(USER).user('alice@example.com', true));
      assert.deepEqual(decisions, []);
      assert.equal(recipient && findAddress(recipient, 'alice@example.com')?.verified, false);
    },
  },
  {
    message: messages.primaryChanged,
    content: envelope('PrimaryEmailChanged', USER, 5, {
      email: email('alice@work.example.com'),
      previousEmail: email('alice@example.com'),
    }),
    metadata: wireMetadata('PrimaryEmailChanged', USER),
    handle(m) {
      const known = new Known(USER)
        .user('alice@example.com', true)
        .add('EmailAdded', { email: 'alice@work.example.com' })
        .add('EmailVerified', { email: 'alice@work.example.com', method: 'verification-link' });
      const { recipient, decisions } = receive(m, known);
      assert.equal(recipient?.primaryEmail, 'alice@work.example.com');
      assert.deepEqual(summary(decisions), ['send primary-email-changed to alice@work.example.com']);
    },
  },
  {
    message: messages.passwordReset,
    content: envelope('PasswordResetRequested', USER, 3, {
      email: email('alice@example.com'),
      token: sealedToken(sealedExamples.PasswordResetRequested),
      expiresAt: time(EXPIRES_EXAMPLE),
    }),
    metadata: wireMetadata('PasswordResetRequested', USER),
    handle(m) {
      const known = new Known(USER)
        .user('alice@example.com', false)
        .add('EmailVerified', { email: 'alice@example.com', method: 'verification-link' });
      const { decisions, emails } = receive(m, known);
      assert.deepEqual(summary(decisions), ['send password-reset to alice@example.com']);
      assert.match(emails[0]!.rendered.text, /pact-example-PasswordResetRequested/);
    },
  },
  {
    message: messages.apiKeyCreated,
    content: envelope('ApiKeyCreated', USER, 2, {
      keyId: uuid(KEY_ID),
      name: like('deploy'),
      createdBy: uuid(USER),
      secretSha256: regex('^[0-9a-f]{64}$', SECRET_SHA256),
    }),
    metadata: wireMetadata('ApiKeyCreated', USER),
    handle(m) {
      const { recipient, decisions, emails } = receive(m, new Known(USER).user('alice@example.com', true));
      assert.deepEqual(summary(decisions), ['send api-key-created to alice@example.com']);
      assert.match(emails[0]!.rendered.text, /deploy/);
      // Admin requests to notifications are authenticated against the projected hash.
      assert.deepEqual(recipient?.apiKeys, [{ keyId: KEY_ID, secretSha256: SECRET_SHA256, revoked: false }]);
    },
  },
  {
    message: messages.apiKeyRevoked,
    content: envelope('ApiKeyRevoked', USER, 3, { keyId: uuid(KEY_ID), revokedBy: uuid(USER) }),
    metadata: wireMetadata('ApiKeyRevoked', USER),
    handle(m) {
      const known = new Known(USER).user('alice@example.com', true).add('ApiKeyCreated', {
        keyId: KEY_ID,
        name: 'deploy',
        createdBy: USER,
        secretSha256: SECRET_SHA256,
      });
      const { recipient, decisions } = receive(m, known);
      assert.deepEqual(decisions, []);
      assert.deepEqual(recipient?.apiKeys, [{ keyId: KEY_ID, secretSha256: SECRET_SHA256, revoked: true }]);
    },
  },
  {
    message: messages.siteAdminChanged,
    content: envelope('SiteAdminChanged', USER, 2, { siteAdmin: true, changedBy: uuid(ADMIN) }),
    metadata: wireMetadata('SiteAdminChanged', USER),
    handle(m) {
      const { recipient, decisions } = receive(m, new Known(USER).user('alice@example.com', true));
      assert.equal(recipient?.siteAdmin, true);
      assert.deepEqual(summary(decisions), ['send site-admin-changed to alice@example.com']);
    },
  },
  {
    message: messages.invitedNewAddress,
    content: envelope('UserInvited', INVITER, 2, {
      invitationId: uuid(INVITATION_ID),
      email: email('newcomer@example.com'),
      inviterUsername: like('alice'),
      organization: like('acme'),
      token: sealedToken(sealedExamples.UserInvited),
      expiresAt: time(EXPIRES_EXAMPLE),
    }),
    metadata: wireMetadata('UserInvited', INVITER),
    handle(m) {
      const { decisions, emails } = receive(m, new Known(INVITER).user('alice@example.com', true));
      assert.deepEqual(summary(decisions), ['send invitation to newcomer@example.com']);
      assert.match(emails[0]!.rendered.text, /acme/);
      assert.match(emails[0]!.rendered.text, /\/-\/invitation\?/);
    },
  },
  {
    message: messages.invitedExistingUser,
    content: envelope('UserInvited', INVITER, 2, {
      invitationId: uuid(INVITATION_ID),
      email: email('bob@example.com'),
      inviterUsername: like('alice'),
      organization: like('acme'),
      inviteeUserId: uuid(INVITEE),
      token: sealedToken(sealedExamples.UserInvited),
      expiresAt: time(EXPIRES_EXAMPLE),
    }),
    metadata: wireMetadata('UserInvited', INVITER),
    handle(m) {
      const inviter = new Known(INVITER).user('alice@example.com', true);
      const invitee = new Known(INVITEE).user('bob@example.com', true, 'bob');
      const { decisions } = receive(m, inviter, invitee);
      // An existing user is reached at its verified primary, like for any product email.
      assert.deepEqual(summary(decisions), ['send invitation to bob@example.com']);
    },
  },
  {
    message: messages.userDeleted,
    content: envelope('UserDeleted', USER, 5, { deletedBy: 'site-admin' }),
    metadata: wireMetadata('UserDeleted', USER),
    handle(m) {
      const known = new Known(USER).user('alice@example.com', true).add('EmailAdded', {
        email: 'alice@work.example',
      });
      const { event, decisions } = receive(m, known);
      // No email about a deletion; the erasure itself is notifications' (its recipient and delivery log).
      assert.deepEqual(decisions, []);
      assert.deepEqual(event.data, { deletedBy: 'site-admin' });
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

describe('notifications ← accounts message pact (consumer)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-consumer-'));
  const generated = join(dir, `${CONSUMER}-${PROVIDER}.json`);
  const pact = new MessageConsumerPact({ consumer: CONSUMER, provider: PROVIDER, dir, logLevel: 'error' });
  let failures = 0;
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const e of expectations) {
    it(`${e.message.description} (given ${e.message.state})`, async () => {
      failures += 1;
      await pact
        .given(e.message.state)
        .expectsToReceive(e.message.description)
        .withContent(e.content)
        .withMetadata(e.metadata)
        .verify(async (m) => e.handle(m));
      failures -= 1;
    });
  }

  it('covers every accounts event notifications acts on', () => {
    const covered = new Set(expectations.map((e) => e.message.type));
    for (const type of [
      'UserCreated',
      'EmailAdded',
      'EmailVerificationRequested',
      'EmailVerified',
      'EmailUnverified',
      'PrimaryEmailChanged',
      'PasswordSetLinkRequested',
      'PasswordResetRequested',
      'ApiKeyCreated',
      'ApiKeyRevoked',
      'SiteAdminChanged',
      'UserInvited',
    ] as const) {
      assert.ok(covered.has(type), `no interaction for ${type}`);
    }
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

describe('a pact that leaves out what notifications relies on fails the consumer test', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-consumer-broken-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const apiKeyCreated = expectations.find((e) => e.message === messages.apiKeyCreated)!;
  const verificationRequested = expectations.find((e) => e.message === messages.verificationRequested)!;
  const without = (content: Record<string, unknown>, path: string[]): Record<string, unknown> => {
    const [head, ...rest] = path as [string, ...string[]];
    if (rest.length === 0) {
      const { [head]: _removed, ...kept } = content;
      return kept;
    }
    return { ...content, [head]: without(content[head] as Record<string, unknown>, rest) };
  };

  // Each case names the error notifications' own code gives, so the test fails for the right reason.
  const cases: {
    name: string;
    e: Expectation;
    content?: Record<string, unknown>;
    metadata?: Metadata;
    error: RegExp;
  }[] = [
    {
      name: 'ApiKeyCreated without data.keyId',
      e: apiKeyCreated,
      content: without(apiKeyCreated.content, ['data', 'keyId']),
      error: /invalid event at \/data/,
    },
    {
      name: 'ApiKeyCreated without userId',
      e: apiKeyCreated,
      content: without(apiKeyCreated.content, ['userId']),
      error: /invalid event at \//,
    },
    {
      name: 'EmailVerificationRequested without data.token.tag',
      e: verificationRequested,
      content: without(verificationRequested.content, ['data', 'token', 'tag']),
      error: /invalid event at \/data\/token/,
    },
    {
      name: 'EmailVerificationRequested without the Kafka key',
      e: verificationRequested,
      metadata: Object.fromEntries(
        Object.entries(verificationRequested.metadata).filter(([k]) => k !== KEY_METADATA),
      ),
      error: /the Kafka key is the user id/,
    },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      const broken = new MessageConsumerPact({
        consumer: CONSUMER,
        provider: PROVIDER,
        dir,
        logLevel: 'error',
      });
      await assert.rejects(
        broken
          .given(c.e.message.state)
          .expectsToReceive(c.e.message.description)
          .withContent(c.content ?? c.e.content)
          .withMetadata(c.metadata ?? c.e.metadata)
          .verify(async (m) => c.e.handle(m)),
        c.error,
      );
      assert.ok(
        !existsSync(join(dir, `${CONSUMER}-${PROVIDER}.json`)),
        'a failing interaction writes no pact',
      );
    });
  }
});
