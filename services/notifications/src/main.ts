import type { Bus } from '@sitemail/bus';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { SiteConfigSource } from '@sitemail/site-config';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { notificationsApp, type WorkerSettings } from './app.ts';

export interface StartNotificationsOptions {
  port: number;
  host?: string;
  db: Database;
  bus: Bus;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey | LinkTokenKey[];
  /** A logger instance, Fastify logger options, or false for none (default: info level). */
  logger?: FastifyBaseLogger | FastifyServerOptions['logger'];
  worker?: WorkerSettings | false;
  /** How long a delivery waits for a recipient not known yet before it is suppressed (ms, default 24 h). */
  awaitRecipientMs?: number;
}

export interface RunningNotifications {
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

const isLoggerInstance = (l: unknown): l is FastifyBaseLogger =>
  typeof l === 'object' && l !== null && typeof (l as { child?: unknown }).child === 'function';

/** Migrates, starts the consumer and the delivery worker, and listens. `close()` stops all of it (not db/bus). */
export async function startNotifications(opts: StartNotificationsOptions): Promise<RunningNotifications> {
  const logger = opts.logger ?? { level: 'info' };
  const app = Fastify({
    ...(isLoggerInstance(logger) ? { loggerInstance: logger } : { logger }),
    ajv: { customOptions: { removeAdditional: false } },
  }) as unknown as FastifyInstance;
  await app.register(notificationsApp, {
    db: opts.db,
    bus: opts.bus,
    siteConfig: () => opts.siteConfig.current(),
    linkTokenKeys: opts.linkTokenKey,
    ...(opts.worker !== undefined ? { worker: opts.worker } : {}),
    ...(opts.awaitRecipientMs !== undefined ? { awaitRecipientMs: opts.awaitRecipientMs } : {}),
  });
  const address = await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  return { url: address, app, close: () => app.close() };
}
