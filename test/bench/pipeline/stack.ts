/**
 * The pipeline the bench runs: a fresh Postgres database of its own on the DATABASE_URL server
 * (each service makes its own schema in it, `accounts` and `notifications`, as in production; the
 * database is dropped afterwards), the librdkafka mock cluster (its own native process, started
 * by the testkit), the SMTP sink (its own process) and both services on their production build.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateLinkTokenKey, topics } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import { type TestKafka, testKafka } from '@sitemail/testkit';
import { freePort } from '../../e2e/processes.ts';
import { type Service, type Sink, startBuiltService, startSink } from './processes.ts';

export interface PipelineStack {
  accounts: Service;
  notifications: Service;
  sink: Sink;
  kafka: TestKafka;
  /** This run's database (dropped by `stop`). */
  databaseUrl: string;
  /** The services' environment (without secrets' values), for the report. */
  settings: Record<string, string>;
  stop(): Promise<void>;
}

export interface StackOptions {
  root: string;
  databaseUrl: string;
  /** Partitions of the accounts topic (docker-compose creates 6). */
  partitions: number;
  logLevel: string;
  /** Extra node flags for both services (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Extra environment for both services (tuning knobs). */
  env?: Record<string, string>;
}

export async function startPipelineStack(o: StackOptions): Promise<PipelineStack> {
  const cleanups: (() => Promise<unknown> | unknown)[] = [];
  const stop = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        console.error(`bench cleanup: ${(err as Error).message}`);
      }
    }
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), 'sitemail-bench-pipeline-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));

    const sink = await startSink();
    cleanups.push(() => sink.stop());

    const kafka = await testKafka({
      topics: Object.values(topics).map((name) => ({
        name,
        partitions: name === topics.accountsEvents ? o.partitions : 1,
      })),
    });
    cleanups.push(() => kafka.stop());

    const dbName = `bench_pipeline_${randomBytes(4).toString('hex')}`;
    const admin = await openDatabase({ url: o.databaseUrl, maxConnections: 1 });
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.close();
    cleanups.push(async () => {
      const db = await openDatabase({ url: o.databaseUrl, maxConnections: 1 });
      await db.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).finally(() => db.close());
    });
    const url = new URL(o.databaseUrl);
    url.pathname = `/${dbName}`;

    const [accountsPort, notificationsPort] = [await freePort(), await freePort()];
    const siteConfig = join(dir, 'site-config.json');
    writeFileSync(
      siteConfig,
      JSON.stringify({
        externalURL: `http://127.0.0.1:${accountsPort}`,
        'email.senderName': 'Bench Instance',
        'email.address': 'noreply@bench.example.com',
        // Loopback, no AUTH: the sink is the fastest SMTP server there is, so the figures are the pipeline's.
        'email.smtp': {
          host: '127.0.0.1',
          port: sink.port,
          authentication: 'none',
          domain: 'bench.example.com',
        },
        'auth.providers': [{ type: 'builtin' }],
      }),
    );
    const common = {
      DATABASE_URL: url.toString(),
      KAFKA_BROKERS: kafka.brokers.join(','),
      SITE_CONFIG: siteConfig,
      LINK_TOKEN_KEY: generateLinkTokenKey('bench'),
      LOG_LEVEL: o.logLevel,
      ...o.env,
    };
    const start = (name: 'accounts' | 'notifications', port: number) => {
      const dataDir = join(dir, name);
      mkdirSync(dataDir, { recursive: true });
      return startBuiltService({
        name,
        root: o.root,
        port,
        env: { ...common, DATA_DIR: dataDir },
        ...(o.nodeArgs ? { nodeArgs: o.nodeArgs } : {}),
      });
    };
    // One after the other, so each start-to-ready figure is the service's own, not two sharing the CPU.
    const accounts = await start('accounts', accountsPort);
    cleanups.push(() => accounts.stop());
    const notifications = await start('notifications', notificationsPort);
    cleanups.push(() => notifications.stop());
    return {
      accounts,
      notifications,
      sink,
      kafka,
      databaseUrl: url.toString(),
      settings: {
        DATABASE_URL: `${url.protocol}//${url.host}/${dbName}`,
        KAFKA_BROKERS: common.KAFKA_BROKERS,
        LOG_LEVEL: o.logLevel,
        ...o.env,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
