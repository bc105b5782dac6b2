/**
 * The notifications service on its own (containers, production):
 *   PORT (3002), HOST (127.0.0.1), DATABASE_URL (unset: PGlite in .data/notifications),
 *   KAFKA_BROKERS (unset: in-process bus in .data/bus), SITE_CONFIG (config/site-config.jsonc),
 *   LINK_TOKEN_KEY (required with Kafka; otherwise read or generated in .data/link-token.key), LOG_LEVEL (info),
 *   AWAIT_RECIPIENT_HOURS (24: how long an email waits for a recipient notifications has not seen yet).
 */
import { join, resolve } from 'node:path';
import { brokersFromEnv, busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { loadLinkTokenKey, loadSiteConfig } from '@sitemail/site-config';
import { startNotifications } from './main.ts';

const env = process.env;
const root = resolve(import.meta.dirname, '../../..');
const dataDir = resolve(env.DATA_DIR ?? join(root, '.data'));

const linkTokenKey = () =>
  loadLinkTokenKey({ value: env.LINK_TOKEN_KEY, withKafka: brokersFromEnv(env) !== undefined, dataDir });

function port(): number {
  const value = Number(env.PORT ?? 3002);
  if (!Number.isInteger(value) || value < 0 || value > 65535)
    throw new Error(`PORT must be a port number, not "${env.PORT}"`);
  return value;
}

function awaitRecipientMs(): number | undefined {
  if (env.AWAIT_RECIPIENT_HOURS === undefined) return undefined;
  const hours = Number(env.AWAIT_RECIPIENT_HOURS);
  if (env.AWAIT_RECIPIENT_HOURS.trim() === '' || !Number.isFinite(hours) || hours < 0) {
    throw new Error(
      `AWAIT_RECIPIENT_HOURS must be a number of hours >= 0, not "${env.AWAIT_RECIPIENT_HOURS}"`,
    );
  }
  return hours * 60 * 60 * 1000;
}

async function main() {
  const level = env.LOG_LEVEL ?? 'info';
  // Until the app's logger exists, site-config messages go out as the same kind of JSON line.
  const line = (lvl: number) => (obj: object, msg?: string) =>
    console.error(JSON.stringify({ level: lvl, time: Date.now(), name: 'site-config', ...obj, msg }));
  const logger = { info: line(30), warn: line(40), error: line(50) };
  // Configuration errors first, before anything is opened.
  const listenPort = port();
  const awaitMs = awaitRecipientMs();
  const key = linkTokenKey();
  const siteConfig = loadSiteConfig(resolve(env.SITE_CONFIG ?? join(root, 'config/site-config.jsonc')), {
    logger,
  });
  const bus = busFromEnv(env, { clientId: 'notifications', dataDir: join(dataDir, 'bus') });
  const db = await openDatabase(
    env.DATABASE_URL
      ? { url: env.DATABASE_URL, schema: 'notifications' }
      : { dataDir: join(dataDir, 'notifications') },
  );
  const running = await startNotifications({
    port: listenPort,
    host: env.HOST ?? '127.0.0.1',
    db,
    bus,
    siteConfig,
    linkTokenKey: key,
    logger: { level },
    ...(awaitMs !== undefined ? { awaitRecipientMs: awaitMs } : {}),
  });
  running.app.log.info({ url: running.url, docs: `${running.url}/docs` }, 'notifications listening');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.app.log.info({ signal }, 'notifications: shutting down');
    // Sends in flight get time to finish; a stuck one is reclaimed by the next instance anyway.
    const deadline = setTimeout(() => process.exit(1), 20_000).unref();
    await running.close();
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
  console.error(`notifications failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
