/**
 * `npm start`: the whole product in one process with embedded defaults and no outside services —
 * accounts on :3001, notifications on :3002, a development mail sink on :2525 that keeps every
 * email as a file in .data/mail, PGlite databases in .data/, and an in-process event bus
 * persisted in .data/bus. `DATABASE_URL` and `KAFKA_BROKERS` switch to the real parts (each
 * service then gets its own schema / consumer group as in production).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startAccounts } from '@sitemail/accounts/main';
import { brokersFromEnv, busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { startMailSink } from '@sitemail/mail-sink';
import { startNotifications } from '@sitemail/notifications/main';
import { loadLinkTokenKey, loadSiteConfig } from '@sitemail/site-config';

const root = resolve(import.meta.dirname, '..');
const dataDir = resolve(process.env.DATA_DIR ?? join(root, '.data'));
mkdirSync(dataDir, { recursive: true });

const env = process.env;
const host = env.HOST ?? '127.0.0.1';
const accountsPort = Number(env.ACCOUNTS_PORT ?? 3001);
const notificationsPort = Number(env.NOTIFICATIONS_PORT ?? 3002);
const mailSinkPort = Number(env.MAIL_SINK_PORT ?? 2525);
const siteConfigPath = resolve(env.SITE_CONFIG ?? join(root, 'config/site-config.jsonc'));

async function main() {
  const key = loadLinkTokenKey({
    value: env.LINK_TOKEN_KEY,
    withKafka: brokersFromEnv(env) !== undefined,
    dataDir,
  });
  const siteConfig = loadSiteConfig(siteConfigPath, { logger: console });
  const mailDir = join(dataDir, 'mail');
  const sink = await startMailSink({ host: '127.0.0.1', port: mailSinkPort, dir: mailDir });
  const bus = busFromEnv(env, { clientId: 'sitemail', dataDir: join(dataDir, 'bus') });
  const accountsDb = await openDatabase(
    env.DATABASE_URL ? { url: env.DATABASE_URL, schema: 'accounts' } : { dataDir: join(dataDir, 'accounts') },
  );
  const notificationsDb = await openDatabase(
    env.DATABASE_URL
      ? { url: env.DATABASE_URL, schema: 'notifications' }
      : { dataDir: join(dataDir, 'notifications') },
  );
  const accounts = await startAccounts({
    port: accountsPort,
    host,
    db: accountsDb,
    bus,
    siteConfig,
    linkTokenKey: key,
  });
  const notifications = await startNotifications({
    port: notificationsPort,
    host,
    db: notificationsDb,
    bus,
    siteConfig,
    linkTokenKey: key,
  });

  console.log(`
  sitemail is running (embedded mode: ${env.DATABASE_URL ? 'Postgres' : 'PGlite in .data/'}, ${
    env.KAFKA_BROKERS ? `Kafka at ${env.KAFKA_BROKERS}` : 'in-process event bus'
  })
    accounts       ${accounts.url}   (API docs ${accounts.url}/docs)
    notifications  ${notifications.url}   (API docs ${notifications.url}/docs)
    mail sink      smtp://127.0.0.1:${sink.port}, emails saved in ${mailDir}
    site config    ${siteConfigPath} (edits apply without a restart)
  Press Ctrl-C to stop.
`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: shutting down`);
    const deadline = setTimeout(() => process.exit(1), 15_000).unref();
    await accounts.close();
    await notifications.close();
    await bus.close();
    await Promise.all([accountsDb.close(), notificationsDb.close()]);
    await sink.close();
    await siteConfig.close();
    clearTimeout(deadline);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  console.error(`sitemail failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
