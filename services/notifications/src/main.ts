import type { Bus } from '@sitemail/bus';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import {
  createLogger,
  type LogLevel,
  listenOrClose,
  serverOptions,
  type TrustProxy,
} from '@sitemail/service-kit';
import type { SiteConfigSource } from '@sitemail/site-config';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { notificationsApp, type WorkerSettings } from './app.ts';

export interface StartNotificationsOptions {
  port: number;
  host?: string;
  db: Database;
  bus: Bus;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey | LinkTokenKey[];
  /** The process's logger (the service kit's `createLogger`), options for one, or false for none (default: info). */
  logger?: FastifyBaseLogger | { level?: LogLevel } | false;
  /** Which proxies' X-Forwarded-For to believe (TRUST_PROXY); default none. */
  trustProxy?: TrustProxy;
  worker?: WorkerSettings | false;
  /** How long a delivery waits for a recipient not known yet before it is suppressed (ms, default 24 h). */
  awaitRecipientMs?: number;
}

export interface RunningNotifications {
  url: string;
  app: FastifyInstance;
  /** Stops accepting, finishes requests in flight, stops the consumer and the worker (not db/bus). */
  close(): Promise<void>;
}

const isLoggerInstance = (l: unknown): l is FastifyBaseLogger =>
  typeof l === 'object' && l !== null && typeof (l as { child?: unknown }).child === 'function';

function loggerFor(logger: StartNotificationsOptions['logger']): FastifyBaseLogger | false {
  if (logger === false) return false;
  if (isLoggerInstance(logger)) return logger;
  return createLogger({ name: 'notifications', level: logger?.level ?? 'info' }) as FastifyBaseLogger;
}

/** Migrates, starts the consumer and the delivery worker, and listens. `close()` stops all of it (not db/bus). */
export async function startNotifications(opts: StartNotificationsOptions): Promise<RunningNotifications> {
  const app = Fastify(
    serverOptions({
      logger: loggerFor(opts.logger),
      ...(opts.trustProxy !== undefined ? { trustProxy: opts.trustProxy } : {}),
    }),
  ) as unknown as FastifyInstance;
  await app.register(notificationsApp, {
    db: opts.db,
    bus: opts.bus,
    siteConfig: () => opts.siteConfig.current(),
    linkTokenKeys: opts.linkTokenKey,
    ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
    ...(opts.awaitRecipientMs !== undefined ? { awaitRecipientMs: opts.awaitRecipientMs } : {}),
  });
  // Listening or closed: a port in use must not leave the relay, consumer or worker running.
  const listening = await listenOrClose(app, { port: opts.port, host: opts.host });
  return { url: listening.url, app, close: listening.close };
}
