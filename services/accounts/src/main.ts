import type { Bus } from '@sitemail/bus';
import { type LinkTokenKey, topics } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import { createEventStore, createOutboxRelay } from '@sitemail/event-store';
import {
  createLogger,
  type DestinationStream,
  isLoggerInstance,
  type LogLevel,
  listenOrClose,
  serverOptions,
  type TrustProxy,
} from '@sitemail/service-kit';
import type { SiteConfigSource } from '@sitemail/site-config';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { type AccountsAppOptions, accountsApp } from './app.ts';
import { toAccountsMessage } from './messages.ts';
import { ACCOUNTS_RELAY_NAME } from './metrics.ts';
import { retentionPlugin } from './retention.ts';
import { prepareAccountsDatabase } from './store/prepare.ts';
import { openingPublisher } from './store/published-events.ts';

export interface StartAccountsOptions {
  port: number;
  host?: string;
  db: Database;
  bus: Bus;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey;
  /** The process's logger (`createLogger`), or options for one, or false/absent for none. */
  logger?: FastifyBaseLogger | { level?: LogLevel; stream?: DestinationStream } | boolean;
  /** Which proxies' X-Forwarded-For to believe (TRUST_PROXY); default none. */
  trustProxy?: TrustProxy;
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

export { redactUrl } from '@sitemail/service-kit';

type LoggerOption = StartAccountsOptions['logger'];

/** The caller's logger, or one made from options (level, a stream tests collect), or none. */
function loggerFor(logger: LoggerOption): FastifyBaseLogger | false {
  if (!logger) return false;
  if (isLoggerInstance(logger)) return logger as FastifyBaseLogger;
  const options = typeof logger === 'object' ? logger : {};
  return createLogger({ name: 'accounts', level: options.level, destination: options.stream });
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
      // The relay reads events sealed (store/personal-data.ts); they are opened just before Kafka.
      publisher: openingPublisher(opts.db, publisher),
      topic: topics.accountsEvents,
      toMessage: toAccountsMessage,
      name: ACCOUNTS_RELAY_NAME,
      onPublished: app.accountsMetrics.relay.onPublished,
      onError: (err, attempt) => {
        app.accountsMetrics.relay.onError();
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
  { name: 'accounts-outbox-relay', dependencies: ['accounts-metrics'] },
);

/**
 * Migrates, builds the app, starts the outbox relay to `topics.accountsEvents` through
 * `bus.publisher()`, and listens.
 */
export async function startAccounts(opts: StartAccountsOptions): Promise<RunningAccounts> {
  await prepareAccountsDatabase(opts.db);
  const eventStore = createEventStore(opts.db);
  const app = Fastify(
    serverOptions({
      logger: loggerFor(opts.logger),
      ...(opts.trustProxy ? { trustProxy: opts.trustProxy } : {}),
    }),
  ) as unknown as FastifyInstance;
  await app.register(accountsApp, {
    db: opts.db,
    eventStore,
    siteConfig: opts.siteConfig,
    linkTokenKey: opts.linkTokenKey,
    ...(opts.rateLimits ? { rateLimits: opts.rateLimits } : {}),
    ...(opts.passwordCost ? { passwordCost: opts.passwordCost } : {}),
  });

  await app.register(outboxRelayPlugin, { db: opts.db, bus: opts.bus });
  // Expired link tokens are purged hourly, in small batches (store/retention.ts).
  await app.register(retentionPlugin, { db: opts.db });

  // Listening or closed: a port in use must not leave the relay, consumer or worker running.
  const listening = await listenOrClose(app, { port: opts.port, host: opts.host });
  return { url: listening.url, app, close: listening.close };
}
