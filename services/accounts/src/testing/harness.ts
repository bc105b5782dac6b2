import {
  generateLinkTokenKey,
  type LinkTokenKey,
  parseLinkTokenKey,
  validateEvent,
} from '@sitemail/contracts';
import { createEventStore, type EventStore, type StoredEvent } from '@sitemail/event-store';
import { type StaticSiteConfigInput, staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { accountsApp } from '../app.ts';
import type { RateLimits } from '../http/routes/options.ts';
import { toAccountsEvent } from '../messages.ts';
import { eventsInCommitOrder, streamIds } from '../store/event-log.ts';
import { isShredded, withPersonalData } from '../store/personal-data.ts';
import { prepareAccountsDatabase } from '../store/prepare.ts';

export const smtpSite: StaticSiteConfigInput = {
  externalURL: 'https://sourcegraph.example.com',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: '127.0.0.1', port: 2525, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};
export const noSmtpSite: StaticSiteConfigInput = {
  externalURL: 'https://sourcegraph.example.com',
  'auth.providers': [{ type: 'builtin' }],
};

export interface Harness {
  app: FastifyInstance;
  db: TestDatabase;
  eventStore: EventStore;
  siteConfig: ReturnType<typeof staticSiteConfig>;
  linkTokenKey: LinkTokenKey;
  /** The app's clock; tests move it. */
  clock: { now: Date; advance(ms: number): void };
  close(): Promise<void>;
}

const generous = { max: 10_000, timeWindow: '1 minute' };

/**
 * A real accounts app on a fresh schema of the test database (Postgres with DATABASE_URL, else
 * the process's PGlite), through `app.inject`. Only the scrypt cost is lowered, to keep suites fast.
 */
export async function startHarness(
  opts: { site?: StaticSiteConfigInput; rateLimits?: Partial<RateLimits>; db?: TestDatabase } = {},
): Promise<Harness> {
  const db = opts.db ?? (await testDatabase('accounts'));
  await prepareAccountsDatabase(db);
  // As the service reads it: personal fields opened (the raw rows hold them sealed).
  const eventStore = withPersonalData(db, createEventStore(db));
  const siteConfig = staticSiteConfig(opts.site ?? smtpSite);
  const linkTokenKey = parseLinkTokenKey(generateLinkTokenKey('test'));
  const clock = {
    now: new Date('2026-11-25T10:00:00.000Z'),
    advance(ms: number) {
      this.now = new Date(this.now.getTime() + ms);
    },
  };
  const app = Fastify({ logger: false });
  await app.register(accountsApp, {
    db,
    eventStore,
    siteConfig,
    linkTokenKey,
    clock: () => clock.now,
    passwordCost: { N: 1024, r: 8, p: 1 },
    rateLimits: { signUp: generous, login: generous, emailRequests: generous, ...opts.rateLimits },
  });
  await app.ready();
  return {
    app,
    db,
    eventStore,
    siteConfig,
    linkTokenKey,
    clock,
    async close() {
      // Whatever a suite made the service append must be what the contracts promise consumers.
      const streams = await streamIds(db);
      const stored = (await Promise.all(streams.map((id) => eventStore.readStream(id)))).flat();
      // A deleted user's events lack their (shredded) personal fields: the relay never publishes them.
      const invalid = stored
        .filter((e) => !isShredded(e))
        .map(toAccountsEvent)
        .map((event) => ({ type: event.type, problems: validateEvent(event) }))
        .filter((r) => r.problems.length > 0);
      await app.close();
      await siteConfig.close();
      if (!opts.db) await db.close();
      if (invalid.length > 0)
        throw new Error(`events not valid against the contracts: ${JSON.stringify(invalid)}`);
    },
  };
}

export const basic = (login: string, password: string) =>
  `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
export const token = (secret: string) => `token ${secret}`;

export const types = (events: StoredEvent[]) => events.map((e) => e.type);

export const PASSWORD = 'correct horse battery staple';

/** Signs up through the API; asserts 201. */
export async function signUp(
  h: Harness,
  username: string,
  email = `${username}@example.com`,
  password = PASSWORD,
) {
  const res = await h.app.inject({ method: 'POST', url: '/sign-up', payload: { username, email, password } });
  if (res.statusCode !== 201) throw new Error(`sign-up of ${username}: ${res.statusCode} ${res.body}`);
  return res.json() as { id: string; username: string; siteAdmin: boolean; version: number };
}

/** Creates an API key with the user's password (the first-key path); asserts 201. */
export async function createKey(h: Harness, login: string, name = 'key', password = PASSWORD) {
  const res = await h.app.inject({
    method: 'POST',
    url: '/users/me/api-keys',
    headers: { authorization: basic(login, password) },
    payload: { name },
  });
  if (res.statusCode !== 201) throw new Error(`key for ${login}: ${res.statusCode} ${res.body}`);
  return res.json() as { key: { id: string }; secret: string };
}

/** A signed-up user with an API key: the first one of a site is its site admin. */
export async function userWithKey(h: Harness, username: string) {
  const user = await signUp(h, username);
  const { secret } = await createKey(h, username);
  return { ...user, auth: { authorization: token(secret) }, secret };
}

/** The link code carried (sealed) by the user's last event of `type`, opened as notifications would. */
export async function linkCode(h: Harness, userId: string, type: string): Promise<string> {
  const events = await h.eventStore.readStream(userId);
  const event = events.filter((e) => e.type === type).at(-1);
  if (!event) throw new Error(`no ${type} on ${userId}`);
  const { openToken } = await import('@sitemail/contracts');
  return openToken(
    (event.data as { token: Parameters<typeof openToken>[0] }).token,
    h.linkTokenKey,
    userId,
    type,
  );
}

/** Every event of the store, in commit order: to assert what a request appended (and what it did not). */
export const allEvents = (h: Harness) => eventsInCommitOrder(h.db);

/** Verifies an address by following its last verification link, as its owner would; asserts 200. */
export async function verifyByLink(h: Harness, userId: string, email: string): Promise<void> {
  const code = await linkCode(h, userId, 'EmailVerificationRequested');
  const res = await h.app.inject({
    method: 'GET',
    url: `/-/verify-email?code=${encodeURIComponent(code)}&email=${encodeURIComponent(email)}`,
  });
  if (res.statusCode !== 200) throw new Error(`verifying ${email}: ${res.statusCode} ${res.body}`);
}
