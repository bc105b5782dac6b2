/**
 * One scenario's world: a fresh 3-broker librdkafka mock cluster (topics with 12 partitions), a
 * fresh database on the run's private Postgres (both services' schemas in it, shared by every
 * instance of a service), the run's SMTP sink (reset), a site config pointing at the sink, and
 * the instances of each service the scenario starts, stops and kills.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PRODUCER_RETRY } from '@sitemail/bus';
import { generateLinkTokenKey, topics } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import { type MockKafka, startMockKafka } from '@sitemail/testkit';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import type { PrivatePostgres } from './postgres.ts';
import { type ServiceInstance, type ServiceName, type Sink, startInstance } from './processes.ts';

export const PARTITIONS = 12;
const linkTokenKey = generateLinkTokenKey('chaos');
let scenarioCount = 0;

export interface ChaosStack {
  kafka: MockKafka;
  sink: Sink;
  databaseUrl: string;
  producer: Producer;
  instances: ServiceInstance[];
  /** Starts one more instance (labelled `<name>-<n>`); it is live when this resolves. */
  start(name: ServiceName): Promise<ServiceInstance>;
  /** Starts an instance again with the environment it had. */
  restart(instance: ServiceInstance): Promise<ServiceInstance>;
  live(name: ServiceName): ServiceInstance[];
  /** A query on the scenario's database (the harness's own view: leases, queue). */
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export async function startStack(postgres: PrivatePostgres, sink: Sink, label: string): Promise<ChaosStack> {
  const dir = mkdtempSync(join(tmpdir(), `sitemail-chaos-${label}-`));
  await sink.reset();
  await sink.mode({ down: false, greet421: false, share550: 0, dataDelayMs: 0 });
  const kafka = await startMockKafka({
    brokers: 3,
    topics: [
      { name: topics.accountsEvents, partitions: PARTITIONS },
      { name: topics.codeMonitoringEvents, partitions: PARTITIONS },
      { name: topics.notificationsDeadLetter, partitions: 3 },
    ],
  });
  const databaseUrl = await postgres.createDatabase(
    `chaos_${++scenarioCount}_${label.replace(/[^a-z0-9]/g, '_')}`,
  );
  const siteConfig = join(dir, 'site-config.jsonc');
  writeFileSync(
    siteConfig,
    `${JSON.stringify(
      {
        externalURL: 'https://chaos.example.com',
        'email.senderName': 'Chaos Instance',
        'email.address': 'noreply@chaos.example.com',
        'email.smtp': {
          host: sink.host,
          port: sink.port,
          authentication: 'none',
          domain: 'chaos.example.com',
        },
        'auth.providers': [{ type: 'builtin' }],
      },
      null,
      2,
    )}\n`,
  );
  const env = {
    DATABASE_URL: databaseUrl,
    KAFKA_BROKERS: kafka.brokers.join(','),
    SITE_CONFIG: siteConfig,
    LINK_TOKEN_KEY: linkTokenKey,
    LOG_LEVEL: 'info',
  };
  const producer = new Kafka({
    brokers: kafka.brokers,
    clientId: 'chaos-load',
    logLevel: logLevel.NOTHING,
    retry: { retries: 3, initialRetryTime: 200 },
    // No retries inside kafkajs (PRODUCER_RETRY): load.ts's publish retries a chunk whole, so a
    // leader move cannot drop part of it (packages/bus send-whole.ts).
  }).producer({ allowAutoTopicCreation: false, retry: PRODUCER_RETRY });
  await producer.connect();
  const db = await openDatabase({ url: databaseUrl, maxConnections: 2 });
  const instances: ServiceInstance[] = [];
  const counts: Record<ServiceName, number> = { accounts: 0, notifications: 0 };
  const stack: ChaosStack = {
    kafka,
    sink,
    databaseUrl,
    producer,
    instances,
    async start(name) {
      const n = ++counts[name];
      const instance = await startInstance(name, `${name}-${n}`, {
        ...env,
        DATA_DIR: join(dir, `${name}-${n}`),
      });
      instances.push(instance);
      return instance;
    },
    async restart(old) {
      const instance = await startInstance(old.name, `${old.label}'`, old.env);
      instances.push(instance);
      return instance;
    },
    live: (name) => instances.filter((i) => i.name === name && i.alive()),
    async query<T>(sql: string, params: unknown[] = []) {
      return (await db.query(sql, params)).rows as T[];
    },
    async stop() {
      await producer.disconnect().catch(() => {});
      await Promise.all(instances.map((i) => i.stop(15_000)));
      await db.close().catch(() => {});
      await kafka.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}
