/**
 * The accounts service as its own process (Docker, or beside notifications in separate processes).
 * Env: PORT (3001), HOST (127.0.0.1; 0.0.0.0 in Docker), DATABASE_URL (unset: PGlite in
 * .data/accounts), KAFKA_BROKERS (unset: in-process bus), SITE_CONFIG (config/site-config.jsonc),
 * LINK_TOKEN_KEY (required with KAFKA_BROKERS; else generated once into .data/link-token.key), LOG_LEVEL.
 */
import { join, resolve } from 'node:path';
import { brokersFromEnv, busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { loadLinkTokenKey, loadSiteConfig } from '@sitemail/site-config';
import { startAccounts } from './main.ts';

const env = process.env;
const root = resolve(import.meta.dirname, '../../..');
const dataDir = resolve(env.DATA_DIR ?? join(root, '.data'));

const linkTokenKey = () =>
  loadLinkTokenKey({ value: env.LINK_TOKEN_KEY, withKafka: brokersFromEnv(env) !== undefined, dataDir });

async function main() {
  const port = Number(env.PORT ?? 3001);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, not "${env.PORT}"`);
  const key = linkTokenKey();
  const siteConfig = loadSiteConfig(resolve(env.SITE_CONFIG ?? join(root, 'config/site-config.jsonc')), {
    logger: console,
  });
  const bus = busFromEnv(env, { clientId: 'accounts', dataDir: join(dataDir, 'bus') });
  const db = await openDatabase(
    env.DATABASE_URL ? { url: env.DATABASE_URL, schema: 'accounts' } : { dataDir: join(dataDir, 'accounts') },
  );
  const accounts = await startAccounts({
    port,
    host: env.HOST ?? '127.0.0.1',
    db,
    bus,
    siteConfig,
    linkTokenKey: key,
    logger: { level: env.LOG_LEVEL ?? 'info' },
  });
  accounts.app.log.info(`accounts listening on ${accounts.url} (API docs ${accounts.url}/docs)`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    accounts.app.log.info(`${signal}: shutting down`);
    const deadline = setTimeout(() => process.exit(1), 15_000).unref();
    // Stop accepting and finish requests in flight, stop the relay, then release the bus and database.
    await accounts.close();
    await bus.close();
    await db.close();
    await siteConfig.close();
    clearTimeout(deadline);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`accounts failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
