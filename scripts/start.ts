/**
 * `npm start`: the whole product in one process with embedded defaults and no outside services —
 * accounts on :3001, notifications on :3002, a development mail sink on :2525 that keeps every
 * email as a file in .data/mail, one PGlite database in .data/pglite (a schema per service: one
 * WASM Postgres instead of two), and an in-process event bus
 * persisted in .data/bus. `DATABASE_URL` and `KAFKA_BROKERS` switch to the real parts (each
 * service then gets its own schema / consumer group as in production). Ports: ACCOUNTS_PORT,
 * NOTIFICATIONS_PORT, MAIL_SINK_PORT; the rest as packages/service-kit/README.md lists.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startAccounts } from '@sitemail/accounts/main';
import { busFromEnv } from '@sitemail/bus';
import { openDatabase } from '@sitemail/db';
import { startMailSink } from '@sitemail/mail-sink';
import { startNotifications } from '@sitemail/notifications/main';
import { createLogger, envVar, readServiceEnv, runUntilSignal, startTracing } from '@sitemail/service-kit';
import { loadSiteConfig } from '@sitemail/site-config';

const root = resolve(import.meta.dirname, '..');
// One logger for every part; each line says which (`service`). Its level is set once LOG_LEVEL is read.
const logger = createLogger({ name: 'sitemail' });

await runUntilSignal({
  name: 'sitemail',
  logger,
  async start(defer) {
    const env = readServiceEnv(process.env, {
      root,
      extra: {
        accountsPort: envVar.port('ACCOUNTS_PORT', 3001),
        notificationsPort: envVar.port('NOTIFICATIONS_PORT', 3002),
        mailSinkPort: envVar.port('MAIL_SINK_PORT', 2525),
      },
    });
    logger.level = env.logLevel;
    // One process, one tracer provider for both services (OTEL_SERVICE_NAME renames it).
    const tracing = await startTracing({ serviceName: 'sitemail', logger });
    defer('tracing', () => tracing.shutdown());
    mkdirSync(env.dataDir, { recursive: true });

    const siteConfig = loadSiteConfig(env.siteConfigPath, {
      logger: logger.child({ service: 'site-config' }),
    });
    defer('site config', () => siteConfig.close());
    const mailDir = join(env.dataDir, 'mail');
    const sink = await startMailSink({
      host: '127.0.0.1',
      port: env.mailSinkPort,
      dir: mailDir,
      logger: logger.child({ service: 'mail-sink' }),
    });
    defer('mail sink', () => sink.close());
    // Embedded: both schemas in one PGlite (one WASM Postgres: about half the memory and start time
    // of one per service). With DATABASE_URL: a pool each, as in production.
    const dbLog = logger.child({ service: 'database' });
    const warn = (message: string) => dbLog.warn(message);
    const accountsDb = await openDatabase({ ...env.database('accounts'), warn });
    defer('accounts database', () => accountsDb.close());
    const notificationsDb = await openDatabase({ ...env.database('notifications'), warn });
    defer('notifications database', () => notificationsDb.close());
    const bus = busFromEnv(process.env, {
      clientId: 'sitemail',
      dataDir: join(env.dataDir, 'bus'),
      logger: logger.child({ service: 'bus' }),
    });
    defer('bus', () => bus.close());
    // Started side by side: each waits mostly on its own migrations and bus join, so neither need
    // wait for the other (the embedded database serialises their statements anyway).
    const [startedAccounts, startedNotifications] = await Promise.allSettled([
      startAccounts({
        port: env.accountsPort,
        host: env.host,
        db: accountsDb,
        bus,
        siteConfig,
        linkTokenKey: env.linkTokenKey,
        logger: logger.child({ service: 'accounts' }),
        trustProxy: env.trustProxy,
      }),
      startNotifications({
        port: env.notificationsPort,
        host: env.host,
        db: notificationsDb,
        bus,
        siteConfig,
        linkTokenKey: env.linkTokenKey,
        logger: logger.child({ service: 'notifications' }),
      }),
    ]);
    // What did start is stopped on the way out even when the other failed.
    if (startedAccounts.status === 'fulfilled') defer('accounts', () => startedAccounts.value.close());
    if (startedNotifications.status === 'fulfilled') {
      defer('notifications', () => startedNotifications.value.close());
    }
    if (startedAccounts.status === 'rejected') throw startedAccounts.reason;
    if (startedNotifications.status === 'rejected') throw startedNotifications.reason;
    const accounts = startedAccounts.value;
    const notifications = startedNotifications.value;

    process.stdout.write(`
  sitemail is running (embedded mode: ${env.databaseUrl ? 'Postgres' : `PGlite in ${join(env.dataDir, 'pglite')}`}, ${
    env.kafkaBrokers ? `Kafka at ${env.kafkaBrokers.join(',')}` : 'in-process event bus'
  })
    accounts       ${accounts.url}   (API docs ${accounts.url}/docs)
    notifications  ${notifications.url}   (API docs ${notifications.url}/docs)
    mail sink      smtp://127.0.0.1:${sink.port}, emails saved in ${mailDir}
    site config    ${env.siteConfigPath} (edits apply without a restart)
  Press Ctrl-C to stop.

`);
  },
});
