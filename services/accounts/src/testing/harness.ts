import { generateLinkTokenKey, type LinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';
import { createEventStore, type EventStore, type StoredEvent } from '@sitemail/event-store';
import { type StaticSiteConfigInput, staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { accountsApp } from '../app.ts';
import type { RateLimits } from '../http/routes/options.ts';
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
  const eventStore = createEventStore(db);
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
      await app.close();
      await siteConfig.close();
      if (!opts.db) await db.close();
    },
  };
}

export const basic = (login: string, password: string) =>
  `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
export const token = (secret: string) => `token ${secret}`;

export const types = (events: StoredEvent[]) => events.map((e) => e.type);
