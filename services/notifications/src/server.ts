/**
 * The notifications service as its own process (Docker, or beside accounts in separate processes).
 * Env: PORT (3002), AWAIT_RECIPIENT_HOURS (24: how long an email waits for a recipient
 * notifications has not seen yet), and what the service kit's `readServiceEnv` reads: HOST,
 * DATA_DIR, DATABASE_URL (unset: PGlite in .data/notifications), KAFKA_BROKERS (unset: in-process
 * bus), SITE_CONFIG, LINK_TOKEN_KEY, LOG_LEVEL, TRUST_PROXY (see packages/service-kit/README.md).
 */
import { join, resolve } from 'node:path';
import { busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { createLogger, envVar, readServiceEnv, runUntilSignal, startTracing } from '@sitemail/service-kit';
import { loadSiteConfig } from '@sitemail/site-config';
import { startNotifications } from './main.ts';

const root = resolve(import.meta.dirname, '../../..');
// One logger for the process; its level is set once LOG_LEVEL is read (a bad variable stops the
// process before anything opens, reported by runUntilSignal in one line).
const logger = createLogger({ name: 'notifications' });

await runUntilSignal({
  name: 'notifications',
  logger,
  // Sends in flight get time to finish; a stuck one is reclaimed by the next instance anyway.
  graceMs: 20_000,
  async start(defer) {
    const env = readServiceEnv(process.env, {
      root,
      extra: {
        port: envVar.port('PORT', 3002),
        awaitRecipientHours: envVar.number('AWAIT_RECIPIENT_HOURS', { min: 0 }),
      },
    });
    logger.level = env.logLevel;
    // Opened first, closed last: spans of the shutdown itself are flushed too.
    const tracing = await startTracing({ serviceName: 'sitemail-notifications', logger });
    defer('tracing', () => tracing.shutdown());
    const siteConfig = loadSiteConfig(env.siteConfigPath, {
      logger: logger.child({ component: 'site-config' }),
    });
    defer('site config', () => siteConfig.close());
    const db = await openDatabase(env.database('notifications'));
    defer('database', () => db.close());
    const bus = busFromEnv(process.env, { clientId: 'notifications', dataDir: join(env.dataDir, 'bus') });
    defer('bus', () => bus.close());
    const running = await startNotifications({
      port: env.port,
      host: env.host,
      db,
      bus,
      siteConfig,
      linkTokenKey: env.linkTokenKey,
      logger,
      trustProxy: env.trustProxy,
      ...(env.awaitRecipientHours !== undefined
        ? { awaitRecipientMs: env.awaitRecipientHours * 60 * 60 * 1000 }
        : {}),
    });
    defer('http, consumer and worker', () => running.close());
    logger.info({ url: running.url, docs: `${running.url}/docs` }, 'notifications listening');
  },
});
