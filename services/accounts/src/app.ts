import rateLimit from '@fastify/rate-limit';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { LinkTokenKey } from '@sitemail/contracts';
import { type Database, pingDatabase } from '@sitemail/db';
import type { EventStore } from '@sitemail/event-store';
import {
  apiKeySecurityScheme,
  docsPlugin,
  healthPlugin,
  httpTracingPlugin,
  problemsPlugin,
  type ReadinessCheck,
  securityHeadersPlugin,
  validatorCompiler,
} from '@sitemail/service-kit';
import type { SiteConfigSource } from '@sitemail/site-config';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type Accounts, createAccounts } from './application/accounts.ts';
import type { ScryptCost } from './application/passwords.ts';
import { authPlugin } from './http/auth.ts';
import { accountsChallenge, accountsProblem } from './http/problems.ts';
import { apiKeyRoutes } from './http/routes/api-keys.ts';
import { deletionRoutes } from './http/routes/deletion.ts';
import { emailRoutes } from './http/routes/emails.ts';
import { invitationRoutes } from './http/routes/invitations.ts';
import { linkRoutes } from './http/routes/links.ts';
import { defaultRateLimits, type RateLimits } from './http/routes/options.ts';
import { userRoutes } from './http/routes/users.ts';
import { accountsMetricsPlugin } from './metrics.ts';

export interface AccountsAppOptions {
  db: Database;
  eventStore: EventStore;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey;
  clock?: () => Date;
  rateLimits?: Partial<RateLimits>;
  /** scrypt cost of new password hashes (tests lower it); default OWASP's. */
  passwordCost?: ScryptCost;
  /** Readiness checks beside the database's (`/readyz`). */
  readinessChecks?: Record<string, ReadinessCheck>;
}

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts;
  }
}

/** The command and query side, decorated as `app.accounts`. It owns no connection: the caller's db stays the caller's. */
const accountsCore = fp(
  async (app: FastifyInstance, opts: AccountsAppOptions) => {
    app.decorate(
      'accounts',
      createAccounts({
        db: opts.db,
        eventStore: opts.eventStore,
        siteConfig: opts.siteConfig,
        linkTokenKey: opts.linkTokenKey,
        ...(opts.clock ? { clock: opts.clock } : {}),
        ...(opts.passwordCost ? { passwordCost: opts.passwordCost } : {}),
        // Looked up per command: the metrics plugin registers after the docs (so /metrics is documented).
        onCommand: (command, err) => app.accountsMetrics.onCommand(command, err),
      }),
    );
  },
  { name: 'accounts-core' },
);

const docs = {
  title: 'sitemail accounts',
  version: '1.0.0',
  description:
    'Users, their email addresses, API keys and invitations; event-sourced, events published to Kafka ' +
    '(topic accounts.user-events.v1). Errors are RFC 9457 problem details (application/problem+json).',
  securitySchemes: {
    apiKey: apiKeySecurityScheme,
    password: { type: 'http', scheme: 'basic', description: 'Username or address, and password' },
  },
} as const;

const routes: FastifyPluginAsyncTypebox<AccountsAppOptions> = async (app, opts) => {
  const rateLimits = { ...defaultRateLimits, ...opts.rateLimits };
  const routeOptions = { accounts: app.accounts, rateLimits };
  await app.register(userRoutes, routeOptions);
  await app.register(deletionRoutes, routeOptions);
  await app.register(emailRoutes, routeOptions);
  await app.register(apiKeyRoutes, routeOptions);
  await app.register(invitationRoutes, routeOptions);
  await app.register(linkRoutes, routeOptions);
};

/**
 * The accounts HTTP API as a Fastify plugin: register it on a server (it never listens itself).
 * Validation is TypeBox's own compiler: bodies are checked as they are (unknown fields refused,
 * nothing silently dropped), query strings and params are converted first (an integer only from
 * integer text: the kit's validatorCompiler).
 */
export const accountsApp = fp(
  async (app: FastifyInstance, opts: AccountsAppOptions) => {
    app.setValidatorCompiler(validatorCompiler);
    await app.register(httpTracingPlugin);
    await app.register(securityHeadersPlugin);
    await app.register(problemsPlugin, { toProblem: accountsProblem, wwwAuthenticate: accountsChallenge });
    await app.register(accountsCore, opts);
    await app.register(rateLimit, { global: false });
    await app.register(authPlugin, { accounts: app.accounts });
    await app.register(docsPlugin, docs);
    // After the docs (swagger sees only routes added after it), before the routes: its onResponse
    // hook times every answer (GET /metrics, accounts_* series).
    await app.register(accountsMetricsPlugin, { db: opts.db });
    // Readiness leaves the bus out on purpose: with the outbox, accounts keeps serving while Kafka is down.
    await app.register(healthPlugin, {
      checks: { database: () => databaseAnswers(opts.db), ...opts.readinessChecks },
    });
    await app.register(routes, opts);
  },
  { name: 'accounts-app' },
);

/**
 * The readiness check's database part. Its reason is shown to anyone (/readyz is unauthenticated),
 * so it says what is wrong without the driver's message, which names the database's host and port.
 */
async function databaseAnswers(db: Database): Promise<string | undefined> {
  try {
    await pingDatabase(db);
  } catch {
    return 'the database does not answer';
  }
}

export default accountsApp;
