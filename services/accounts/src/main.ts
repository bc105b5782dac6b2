import type { Bus, Publisher } from '@sitemail/bus';
import { type LinkTokenKey, topics } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import { createEventStore, createOutboxRelay, type OutboxRelay } from '@sitemail/event-store';
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
import {
  type AddressEventsHolder,
  addressEventsCheck,
  addressEventsConsumerPlugin,
} from './address-events-consumer.ts';
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

/** Whether the relay has its publisher (readiness); shared by the relay plugin and `/readyz`. */
interface RelayReadiness {
  since: number;
  connected: boolean;
  attempts: number;
  lastError?: string;
}

const relayCheck = (state: RelayReadiness) => async () =>
  state.connected
    ? undefined
    : `connecting to the bus (${Math.round((Date.now() - state.since) / 1000)} s` +
      `${state.lastError ? `, attempt ${state.attempts} failed: ${state.lastError}` : ''})`;

/** Between failed publisher connects: 500 ms doubling to 30 s, as the bus's consumer joins. */
const connectBackoffMs = (attempt: number) => Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 10));

/**
 * The outbox relay to `topics.accountsEvents` as a plugin. The start does not wait for the bus:
 * the publisher connects in the background (retried with backoff), the relay starts once it has
 * it, and `/readyz` says `relay: connecting to the bus (N s…)` until then. Commands are accepted
 * meanwhile (their events wait in the outbox), so the service is live at once and a broker that is
 * down at start is a state, not a failed start. Once connected, readiness no longer follows Kafka
 * (the outbox holds events through an outage). The relay's lease is not awaited either: a standby
 * instance is ready and takes over when the active one's lease runs out. Stopped (after the last
 * request finished) when the app closes, publisher released.
 */
const outboxRelayPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; bus: Bus; readiness: RelayReadiness }) => {
    const state = opts.readiness;
    let stopped = false;
    let publisher: Publisher | undefined;
    let relay: OutboxRelay | undefined;
    let wake: (() => void) | undefined;
    const startRelay = (connected: Publisher) => {
      publisher = connected;
      relay = createOutboxRelay({
        db: opts.db,
        // The relay reads events sealed (store/personal-data.ts); they are opened just before Kafka.
        publisher: openingPublisher(opts.db, connected),
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
      state.connected = true;
      app.log.info({ afterMs: Date.now() - state.since }, 'outbox relay started');
    };
    const connect = async () => {
      while (!stopped) {
        state.attempts++;
        try {
          const connected = await opts.bus.publisher();
          if (stopped) return void (await connected.close().catch(() => {}));
          return startRelay(connected);
        } catch (err) {
          state.lastError = err instanceof Error ? err.message : String(err);
          app.log.warn(
            { attempt: state.attempts, reason: state.lastError },
            'outbox relay: connecting to the bus failed, retrying',
          );
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, connectBackoffMs(state.attempts));
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      }
    };
    void connect();
    app.addHook('onClose', async () => {
      stopped = true;
      wake?.();
      // A connect still in flight is closed when it resolves (and by the bus's close).
      await relay?.stop();
      await publisher?.close();
    });
  },
  { name: 'accounts-outbox-relay', dependencies: ['accounts-metrics'] },
);

/**
 * Migrates, builds the app, starts the outbox relay to `topics.accountsEvents` through
 * `bus.publisher()` (in the background: see the plugin), and listens.
 */
export async function startAccounts(opts: StartAccountsOptions): Promise<RunningAccounts> {
  await prepareAccountsDatabase(opts.db);
  const eventStore = createEventStore(opts.db);
  const readiness: RelayReadiness = { since: Date.now(), connected: false, attempts: 0 };
  const addressEvents: AddressEventsHolder = {};
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
    readinessChecks: { relay: relayCheck(readiness), addressEvents: addressEventsCheck(addressEvents) },
  });

  await app.register(outboxRelayPlugin, { db: opts.db, bus: opts.bus, readiness });
  // What notifications learnt about addresses (undeliverable, lifted), shown on the user's addresses.
  await app.register(addressEventsConsumerPlugin, { db: opts.db, bus: opts.bus, holder: addressEvents });
  // Expired link tokens are purged hourly, in small batches (store/retention.ts).
  await app.register(retentionPlugin, { db: opts.db });

  // Listening or closed: a port in use must not leave the relay, consumer or worker running.
  const listening = await listenOrClose(app, { port: opts.port, host: opts.host });
  return { url: listening.url, app, close: listening.close };
}
