/**
 * The whole product for end-to-end scenarios: accounts and notifications as two separate
 * processes, Kafka (the librdkafka mock cluster, or a real one with KAFKA_BROKERS), Postgres (a
 * database of its own on the DATABASE_URL server, else each process's PGlite in its own data
 * directory) and a real SMTP server receiving what notifications sends.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLinkTokenKey, topics } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import {
  type ReceivedEmail,
  startSmtpServer,
  type TestKafka,
  type TestSmtpServer,
  testKafka,
} from '@sitemail/testkit';
import { freePort, type ServiceProcess, startService } from './processes.ts';

export type SiteConfigFile = Record<string, unknown>;

export interface Stack {
  accounts: ServiceProcess;
  notifications: ServiceProcess;
  smtp: TestSmtpServer;
  kafka: TestKafka;
  /** The config both services read; `writeSiteConfig` replaces it (they pick it up without a restart). */
  siteConfig: SiteConfigFile;
  writeSiteConfig(config: SiteConfigFile): void;
  mailbox: Mailbox;
  /** The stack's temp directory: the site config file and each service's working and data directory. */
  dir: string;
  /** The stack's own Postgres database, when DATABASE_URL is set (else each service has PGlite under `dir`). */
  postgresUrl: string | undefined;
  /** The LINK_TOKEN_KEY both services run with (a rebuild of accounts' read models needs it). */
  linkTokenKey: string;
  /** The SMTP server's account, as the site config holds it. */
  smtpUser: { username: string; password: string };
  /** Secrets the scenarios saw (API keys, link codes) besides the SMTP password; none may reach a log. */
  secrets: Set<string>;
  /** Every secret of `secrets` (and the SMTP password) found in either service's output. */
  leakedSecrets(): { service: string; secret: string }[];
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Names the temp directories and the Postgres database. */
  label: string;
  /** Changes to the default site config (SMTP to the test server, builtin and github sign-in). */
  site?: (defaults: SiteConfigFile) => SiteConfigFile;
  /** More environment for both services (e.g. the OTEL_* variables of a test collector). */
  env?: Record<string, string>;
}

/** A Postgres database of its own for one stack, dropped afterwards; each service makes its schema in it. */
async function scratchPostgres(label: string): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  const base = process.env.DATABASE_URL;
  if (!base) return undefined;
  const name = `e2e_${label}_${randomBytes(4).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = await openDatabase({ url: base, maxConnections: 1 });
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const db = await openDatabase({ url: base, maxConnections: 1 });
      try {
        await db.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await db.close();
      }
    },
  };
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const dir = mkdtempSync(join(tmpdir(), `sitemail-e2e-${opts.label}-`));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        console.error(`e2e cleanup: ${(err as Error).message}`);
      }
    }
  };
  try {
    // Authenticated like a real relay (PLAIN is allowed in clear text to a loopback host only).
    const smtpUser = { username: 'sitemail', password: `smtp-${randomBytes(12).toString('hex')}` };
    const smtp = await startSmtpServer({ auth: 'PLAIN', users: [smtpUser] });
    cleanups.push(() => smtp.close());
    const kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 3 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
        { name: topics.notificationsAddressEvents, partitions: 1 },
        { name: topics.accountsDeadLetter, partitions: 1 },
      ],
    });
    cleanups.push(() => kafka.stop());
    const postgres = await scratchPostgres(opts.label);
    if (postgres) cleanups.push(() => postgres.drop());

    const [accountsPort, notificationsPort] = [await freePort(), await freePort()];
    const defaults: SiteConfigFile = {
      // Links in emails point at accounts, which serves the pages they open.
      externalURL: `http://127.0.0.1:${accountsPort}`,
      'email.senderName': 'E2E Instance',
      'email.address': 'noreply@e2e.example.com',
      'email.smtp': {
        host: smtp.host,
        port: smtp.port,
        authentication: 'PLAIN',
        username: smtpUser.username,
        password: smtpUser.password,
        domain: 'e2e.example.com',
      },
      'auth.providers': [{ type: 'builtin' }, { type: 'github' }],
    };
    const siteConfigPath = join(dir, 'site-config.jsonc');
    let siteConfig = opts.site ? opts.site(defaults) : defaults;
    const writeSiteConfig = (config: SiteConfigFile) => {
      siteConfig = config;
      // Written beside and renamed, so a service never reads half a file.
      const temp = `${siteConfigPath}.tmp`;
      writeFileSync(temp, `// written by the e2e stack\n${JSON.stringify(config, null, 2)}\n`);
      renameSync(temp, siteConfigPath);
    };
    writeSiteConfig(siteConfig);

    const secrets = new Set<string>();
    const linkTokenKey = opts.env?.LINK_TOKEN_KEY ?? generateLinkTokenKey('e2e');
    const common = {
      KAFKA_BROKERS: kafka.brokers.join(','),
      SITE_CONFIG: siteConfigPath,
      LINK_TOKEN_KEY: linkTokenKey,
      LOG_LEVEL: 'info',
      ...(postgres ? { DATABASE_URL: postgres.url } : {}),
      ...opts.env,
    };
    const processDir = (name: string) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      return d;
    };
    // Started together: each migrates its own database while the other does.
    const [accounts, notifications] = await Promise.all([
      startService({
        name: 'accounts',
        port: accountsPort,
        cwd: processDir('accounts'),
        env: { ...common, DATA_DIR: processDir('accounts/data') },
        readyPath: '/healthz',
      }),
      startService({
        name: 'notifications',
        port: notificationsPort,
        cwd: processDir('notifications'),
        env: { ...common, DATA_DIR: processDir('notifications/data') },
        readyPath: '/healthz',
      }),
    ]);
    cleanups.push(() => accounts.stop());
    cleanups.push(() => notifications.stop());

    return {
      accounts,
      notifications,
      smtp,
      kafka,
      get siteConfig() {
        return siteConfig;
      },
      writeSiteConfig,
      mailbox: new Mailbox(smtp),
      dir,
      postgresUrl: postgres?.url,
      linkTokenKey,
      smtpUser,
      secrets,
      leakedSecrets: () =>
        [accounts, notifications].flatMap((service) =>
          [smtpUser.password, ...secrets]
            .filter((secret) => service.output().includes(secret))
            .map((secret) => ({ service: service.name, secret: `${secret.slice(0, 6)}…` })),
        ),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** What reached the SMTP server, by recipient. */
export class Mailbox {
  constructor(private readonly smtp: TestSmtpServer) {}

  /** Every email whose envelope includes `address` (any case). */
  to(address: string): ReceivedEmail[] {
    const a = address.toLowerCase();
    return this.smtp.received.filter((m) => m.envelope.to.some((t) => t.toLowerCase() === a));
  }

  /** Waits for an email to `address` whose subject matches; fails naming what did arrive. */
  async waitFor(address: string, subject: RegExp, timeoutMs = 30_000): Promise<ReceivedEmail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.to(address).find((m) => subject.test(m.subject ?? ''));
      if (found) return found;
      if (Date.now() > deadline) {
        const seen = this.to(address).map((m) => m.subject);
        throw new Error(
          `no email to ${address} with subject ${subject} within ${timeoutMs} ms; received: ${JSON.stringify(seen)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Polls `probe` until it returns a value (not undefined); fails with `what` after the timeout. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastError ? `: ${(lastError as Error).message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
