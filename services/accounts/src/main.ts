import type { Bus } from '@sitemail/bus';
import { type LinkTokenKey, topics } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import { createEventStore, createOutboxRelay } from '@sitemail/event-store';
import type { SiteConfigSource } from '@sitemail/site-config';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { type AccountsAppOptions, accountsApp } from './app.ts';
import { toAccountsMessage } from './messages.ts';
import { prepareAccountsDatabase } from './store/prepare.ts';

export interface StartAccountsOptions {
  port: number;
  host?: string;
  db: Database;
  bus: Bus;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey;
  logger?: boolean | object;
  /** Passed to the app (tests lower limits or the scrypt cost). */
  rateLimits?: AccountsAppOptions['rateLimits'];
  passwordCost?: AccountsAppOptions['passwordCost'];
}

export interface RunningAccounts {
  url: string;
  app: FastifyInstance;
  /** Stops accepting, finishes requests in flight, stops the relay. The db and bus stay the caller's. */
  close(): Promise<void>;
}

/** Link codes ride in query strings (`?code=`); a log line must never carry one. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:code|invitationCode|token)=)[^&#]*/gi, '$1REDACTED');
}

const requestSerializer = (req: { method: string; url: string; ip?: string; id?: unknown }) => ({
  method: req.method,
  url: redactUrl(req.url),
  remoteAddress: req.ip,
  id: req.id,
});

function loggerOption(logger: boolean | object | undefined): FastifyServerOptions['logger'] {
  if (!logger) return false;
  const base = typeof logger === 'object' ? logger : {};
  return {
    level: 'info',
    ...base,
    serializers: { req: requestSerializer },
    // Defence in depth: these never appear in lines this service writes, but a careless one must not leak them.
    redact: {
      paths: ['req.headers.authorization', 'password', '*.password', 'secret', '*.secret'],
      censor: 'REDACTED',
    },
  } as FastifyServerOptions['logger'];
}

/**
 * The outbox relay to `topics.accountsEvents` as a plugin: started with the app, stopped (after the
 * last request finished) when it closes, publisher released. Events committed while the bus is down
 * wait in the outbox; the relay retries with backoff.
 */
const outboxRelayPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; bus: Bus }) => {
    const publisher = await opts.bus.publisher();
    const relay = createOutboxRelay({
      db: opts.db,
      publisher,
      topic: topics.accountsEvents,
      toMessage: toAccountsMessage,
      name: 'accounts-events',
      onError: (err, attempt) => {
        if (attempt === 1 || attempt % 20 === 0) {
          app.log.warn(
            { attempt, reason: err instanceof Error ? err.message : String(err) },
            'outbox relay retrying',
          );
        }
      },
    });
    relay.start();
    app.addHook('onClose', async () => {
      await relay.stop();
      await publisher.close();
    });
  },
  { name: 'accounts-outbox-relay' },
);

/**
 * Migrates, builds the app, starts the outbox relay to `topics.accountsEvents` through
 * `bus.publisher()`, and listens.
 */
export async function startAccounts(opts: StartAccountsOptions): Promise<RunningAccounts> {
  await prepareAccountsDatabase(opts.db);
  const eventStore = createEventStore(opts.db);
  const app = Fastify({
    logger: loggerOption(opts.logger),
    // Requests in flight finish on close; idle keep-alive connections do not hold shutdown up.
    forceCloseConnections: 'idle',
    bodyLimit: 64 * 1024,
  });
  await app.register(accountsApp, {
    db: opts.db,
    eventStore,
    siteConfig: opts.siteConfig,
    linkTokenKey: opts.linkTokenKey,
    ...(opts.rateLimits ? { rateLimits: opts.rateLimits } : {}),
    ...(opts.passwordCost ? { passwordCost: opts.passwordCost } : {}),
  });

  await app.register(outboxRelayPlugin, { db: opts.db, bus: opts.bus });

  let address: string;
  try {
    address = await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  } catch (err) {
    await app.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url: address.replace('://[::1]', '://localhost'),
    app,
    close() {
      // Fastify stops accepting, lets requests in flight finish, then runs the onClose hooks (the relay).
      closing ??= app.close();
      return closing;
    },
  };
}
