/**
 * Provider side of the notifications ← accounts message pact: every message of the committed
 * pact (contracts/pacts/notifications-accounts.json) is produced by accounts' REAL code path —
 * its command handler (`createAccounts`: decider, event store, projections) on a real database
 * (Postgres with DATABASE_URL, else PGlite), the events read back from the store as the outbox
 * relay reads them, and turned into the Kafka message by the very function the relay uses
 * (`toAccountsMessage`). No fixture is involved.
 *
 * The second suite proves the verification has teeth: the same pact, verified against a message
 * builder with one field broken, fails and names the field.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MessageProviderPact, type MessageProviders, type MessageStateHandlers } from '@pact-foundation/pact';
import { prepareAccountsDatabase, toAccountsMessage } from '@sitemail/accounts';
import type { OutgoingMessage } from '@sitemail/bus';
import { generateLinkTokenKey, openToken, parseLinkTokenKey } from '@sitemail/contracts';
import { createEventStore, type StoredEvent } from '@sitemail/event-store';
import { staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import { type Accounts, createAccounts } from '../../services/accounts/src/application/accounts.ts';
import { withPersonalData } from '../../services/accounts/src/store/personal-data.ts';
import { KEY_METADATA, messages, PACT_FILE, PROVIDER, type ProviderState, states } from './pact.ts';

type MessageBuilder = (event: StoredEvent) => OutgoingMessage;

const linkTokenKey = parseLinkTokenKey(generateLinkTokenKey('kprovider'));
let db: TestDatabase;
let accounts: Accounts;
let admin: { id: string };
let seq = 0;

const unique = (prefix: string) => {
  seq += 1;
  return { username: `${prefix}${seq}`, email: `${prefix}${seq}@example.com` };
};

/** A user created through the API (verified address), as an automation would. */
async function apiUser(prefix: string) {
  const { user } = await accounts.createUserByAdmin({ ...unique(prefix), origin: 'api' });
  return user;
}

/** The code of the newest verification link accounts emitted for `email`, opened as notifications would. */
async function verificationCode(userId: string, email: string): Promise<string> {
  const events = await readBack(userId);
  const request = events.findLast(
    (e) => e.type === 'EmailVerificationRequested' && (e.data as { email: string }).email === email,
  );
  assert.ok(request, `no EmailVerificationRequested for ${email}`);
  return openToken(
    (request.data as { token: Parameters<typeof openToken>[0] }).token,
    linkTokenKey,
    userId,
    request.type,
  );
}

/**
 * The user's events as the relay publishes them: read from the store and their personal fields
 * opened (the relay's publisher does that just before Kafka, store/published-events.ts).
 */
const readBack = (userId: string) => withPersonalData(db, createEventStore(db)).readStream(userId);

/**
 * Puts accounts in each provider state through its own commands, and answers the user whose
 * stream holds the messages of that state.
 */
const setUp: Record<ProviderState, () => Promise<string>> = {
  [states.builtinSignUp]: async () => {
    const { user } = await accounts.signUp({ ...unique('signup'), password: 'correct horse battery staple' });
    return user.id;
  },
  [states.externalUser]: async () => {
    const u = unique('octo');
    const { user } = await accounts.upsertExternalUser({ provider: 'github', externalId: `gh-${seq}`, ...u });
    return user.id;
  },
  [states.adminCreatedUser]: async () => {
    const { user } = await accounts.createUserByAdmin({ ...unique('created'), origin: 'site-admin' });
    return user.id;
  },
  [states.emailAdded]: async () => {
    const user = await apiUser('adder');
    await accounts.addEmail(user.id, unique('second').email);
    return user.id;
  },
  [states.emailVerifiedByLink]: async () => {
    const user = await apiUser('verifier');
    const second = unique('work').email;
    await accounts.addEmail(user.id, second);
    await accounts.verifyEmailByLink(await verificationCode(user.id, second), second);
    return user.id;
  },
  [states.emailUnverifiedByAdmin]: async () => {
    const user = await apiUser('unverified');
    await accounts.setEmailVerified(user.id, user.primaryEmail, false, admin.id);
    return user.id;
  },
  [states.primaryChanged]: async () => {
    const user = await apiUser('mover');
    const second = unique('newprimary').email;
    await accounts.addEmail(user.id, second);
    await accounts.verifyEmailByLink(await verificationCode(user.id, second), second);
    await accounts.setPrimaryEmail(user.id, second);
    return user.id;
  },
  [states.passwordReset]: async () => {
    const u = unique('forgetful');
    const { user } = await accounts.signUp({ ...u, password: 'correct horse battery staple' });
    await accounts.verifyEmailByLink(await verificationCode(user.id, u.email), u.email);
    await accounts.requestPasswordReset(u.email);
    return user.id;
  },
  [states.apiKeyCreated]: async () => {
    const user = await apiUser('keyholder');
    await accounts.createApiKey(user.id, 'deploy', user.id);
    return user.id;
  },
  [states.apiKeyRevoked]: async () => {
    const user = await apiUser('revoker');
    const { key } = await accounts.createApiKey(user.id, 'old key', user.id);
    await accounts.revokeApiKey(user.id, key.id, user.id);
    return user.id;
  },
  [states.siteAdminGranted]: async () => {
    const user = await apiUser('promoted');
    await accounts.setSiteAdmin(user.id, true, admin.id);
    return user.id;
  },
  [states.invitedNewAddress]: async () => {
    const inviter = await apiUser('inviter');
    await accounts.invite(inviter.id, unique('newcomer').email, 'acme');
    return inviter.id;
  },
  [states.userDeleted]: async () => {
    const user = await apiUser('deleted');
    await accounts.addEmail(user.id, unique('second').email);
    await accounts.createApiKey(user.id, 'laptop', user.id);
    const by = { userId: admin.id, username: 'admin', siteAdmin: true, via: 'api-key' as const };
    await accounts.deleteUser(user.id, by);
    return user.id;
  },
  [states.invitedExistingUser]: async () => {
    const inviter = await apiUser('inviter');
    const invitee = await apiUser('invitee');
    await accounts.invite(inviter.id, invitee.primaryEmail, 'acme');
    return inviter.id;
  },
};

/** The stream each state left behind, read back from the store. */
let produced: StoredEvent[] = [];

const stateHandlers: MessageStateHandlers = Object.fromEntries(
  Object.entries(setUp).map(([state, run]) => [
    state,
    async () => {
      produced = await readBack(await run());
    },
  ]),
);

/** For each message of the pact, the newest event of its type in the state's stream, as the relay would publish it. */
function providers(build: MessageBuilder): MessageProviders {
  return Object.fromEntries(
    Object.values(messages).map((m) => [
      m.description,
      () => {
        const event = produced.findLast((e) => e.type === m.type);
        assert.ok(event, `state "${m.state}" produced no ${m.type}`);
        const wire = build(event);
        return {
          __pactMessageMetadata: { ...wire.headers, [KEY_METADATA]: wire.key },
          message: JSON.parse(String(wire.value)),
        };
      },
    ]),
  );
}

const verify = (pactUrl: string, build: MessageBuilder) =>
  new MessageProviderPact({
    provider: PROVIDER,
    pactUrls: [pactUrl],
    logLevel: 'error',
    stateHandlers,
    messageProviders: providers(build),
  }).verify();

before(async () => {
  db = await testDatabase('pact_provider');
  await prepareAccountsDatabase(db);
  const siteConfig = staticSiteConfig({
    externalURL: 'https://sourcegraph.example.com',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', host: '127.0.0.1', port: 2525, noVerifyTLS: false },
    'auth.providers': [{ type: 'builtin' }, { type: 'github' }],
  });
  accounts = createAccounts({
    db,
    eventStore: createEventStore(db),
    siteConfig,
    linkTokenKey,
    // Only the password hashing cost is lowered, to keep the suite fast.
    passwordCost: { N: 1024, r: 8, p: 1 },
  });
  admin = await apiUser('admin');
});

after(async () => {
  await db?.close();
});

describe('notifications ← accounts message pact (provider)', () => {
  it('accounts produces every message of the committed pact', async () => {
    await verify(PACT_FILE, toAccountsMessage);
  });

  it('publishes each event keyed by its user, with the CloudEvents headers of the fleet', async () => {
    // The pact checks the key's shape; per-user order needs it to be exactly the user id.
    const userId = await setUp[states.apiKeyCreated]();
    for (const event of await readBack(userId)) {
      const wire = toAccountsMessage(event);
      assert.equal(wire.key, userId);
      assert.equal(wire.headers?.ce_id, event.id);
      assert.equal(wire.headers?.ce_type, event.type);
    }
  });
});

describe('a broken field in accounts’ message builder fails the provider verification', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pact-provider-broken-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The committed pact cut down to one message, so each case verifies only what it breaks. */
  function pactWith(description: string): string {
    const pact = JSON.parse(readFileSync(PACT_FILE, 'utf8')) as { messages: { description: string }[] };
    pact.messages = pact.messages.filter((m) => m.description === description);
    assert.equal(pact.messages.length, 1, `the pact has a message "${description}"`);
    const file = join(dir, `${description.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, JSON.stringify(pact));
    return file;
  }

  /** accounts' real builder, with `mutate` applied to the event body it serialises. */
  const breaking =
    (mutate: (body: Record<string, unknown> & { data: Record<string, unknown> }) => void): MessageBuilder =>
    (event) => {
      const wire = toAccountsMessage(event);
      const body = JSON.parse(String(wire.value));
      mutate(body);
      return { ...wire, value: JSON.stringify(body) };
    };

  const cases: { name: string; description: string; build: MessageBuilder; mismatch: RegExp }[] = [
    {
      name: 'ApiKeyCreated renaming data.secretSha256',
      description: messages.apiKeyCreated.description,
      build: breaking((b) => {
        b.data.keyHash = b.data.secretSha256;
        delete b.data.secretSha256;
      }),
      mismatch: /secretSha256/,
    },
    {
      name: 'EmailVerificationRequested without data.token',
      description: messages.verificationRequested.description,
      build: breaking((b) => {
        delete b.data.token;
      }),
      mismatch: /token/,
    },
    {
      name: 'UserCreated (builtin sign-up) with the address verified',
      description: messages.userCreatedBuiltin.description,
      build: breaking((b) => {
        b.data.emailVerified = true;
      }),
      mismatch: /emailVerified/,
    },
    {
      name: 'EmailAdded with position as a string',
      description: messages.emailAdded.description,
      build: breaking((b) => {
        b.position = String(b.position);
      }),
      mismatch: /position/,
    },
    {
      name: 'ApiKeyRevoked without its CloudEvents type header',
      description: messages.apiKeyRevoked.description,
      build: (event) => {
        const wire = toAccountsMessage(event);
        const { ce_type: _dropped, ...headers } = wire.headers ?? {};
        return { ...wire, headers };
      },
      mismatch: /ce_type/,
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
    await verify(pactWith(messages.apiKeyCreated.description), toAccountsMessage);
  });
});
