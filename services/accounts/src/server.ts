/**
 * The accounts service as its own process (Docker, or beside notifications in separate processes).
 * Env: PORT (3001), and what the service kit's `readServiceEnv` reads: HOST, DATA_DIR, DATABASE_URL
 * (unset: PGlite in .data/accounts), KAFKA_BROKERS (unset: in-process bus), SITE_CONFIG,
 * LINK_TOKEN_KEY, LOG_LEVEL, TRUST_PROXY (see packages/service-kit/README.md).
 */
import { join, resolve } from 'node:path';
import { busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { createLogger, envVar, readServiceEnv, runUntilSignal, startTracing } from '@sitemail/service-kit';
import { loadSiteConfig } from '@sitemail/site-config';
import { startAccounts } from './main.ts';

const root = resolve(import.meta.dirname, '../../..');
// One logger for the process; its level is set once LOG_LEVEL is read (a bad variable stops the
// process before anything opens, reported by runUntilSignal in one line).
const logger = createLogger({ name: 'accounts' });

await runUntilSignal({
  name: 'accounts',
  logger,
  async start(defer) {
    const env = readServiceEnv(process.env, { root, extra: { port: envVar.port('PORT', 3001) } });
    logger.level = env.logLevel;
    // Opened first, closed last: spans of the shutdown itself are flushed too.
    const tracing = await startTracing({ serviceName: 'sitemail-accounts', logger });
    defer('tracing', () => tracing.shutdown());
    const siteConfig = loadSiteConfig(env.siteConfigPath, {
      logger: logger.child({ component: 'site-config' }),
    });
    defer('site config', () => siteConfig.close());
    const db = await openDatabase(env.database('accounts'));
    defer('database', () => db.close());
    const bus = busFromEnv(process.env, { clientId: 'accounts', dataDir: join(env.dataDir, 'bus'), logger });
    defer('bus', () => bus.close());
    const accounts = await startAccounts({
      port: env.port,
      host: env.host,
      db,
      bus,
      siteConfig,
      linkTokenKey: env.linkTokenKey,
      logger,
      trustProxy: env.trustProxy,
    });
    defer('http and outbox relay', () => accounts.close());
    logger.info({ url: accounts.url, docs: `${accounts.url}/docs` }, 'accounts listening');
  },
});
