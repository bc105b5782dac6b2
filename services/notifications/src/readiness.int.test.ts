import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, kafkaBus } from '@sitemail/bus';
import { topics } from '@sitemail/contracts';
import { migrate } from '@sitemail/db';
import {
  type DatabaseOutage,
  databaseWithOutage,
  type TestKafka,
  testDatabaseKind,
  testKafka,
} from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { testLinkKey } from '../test/events.ts';
import { siteFor } from '../test/harness.ts';
import { notificationsApp } from './app.ts';
import { migrations } from './store/migrations.ts';

interface Readiness {
  status: string;
  checks: Record<string, { ok: boolean; reason?: string }>;
}

/** The broker fault needs the mock cluster (with KAFKA_BROKERS, a real Kafka, nothing can take it down). */
const mockOf = (kafka: TestKafka) => {
  if (!kafka.mock)
    throw new Error(
      'this test takes the broker down: run it on the Kafka mock cluster (KAFKA_BROKERS unset)',
    );
  return kafka.mock;
};

/**
 * `/readyz` follows what notifications depends on: 503 naming the database while it is away, or
 * the consumer while the broker is down, and 200 once each is back. The app consumes from the
 * Kafka mock cluster through kafkajs.
 */
describe(`notifications readiness when the database or the bus goes away (${testDatabaseKind()})`, () => {
  let outage: DatabaseOutage;
  let kafka: TestKafka;
  let bus: Bus;
  let app: FastifyInstance;

  before(async () => {
    outage = await databaseWithOutage('notifications_ready');
    await migrate(outage.db, 'notifications', migrations);
    kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 1 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
      ],
    });
    // Short group timeouts and one request retry: a lost broker ends the consumer's run in seconds.
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'readiness-test',
      logLevel: 'nothing',
      logger: { info() {}, warn() {}, error() {} },
      retries: 1,
      sessionTimeoutMs: 6000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 200,
    });
    app = Fastify({ logger: false });
    await app.register(notificationsApp, {
      db: outage.db,
      bus,
      siteConfig: () => siteFor(undefined),
      linkTokenKeys: testLinkKey,
      worker: { pollIntervalMs: 100 },
    });
    await app.ready();
  });
  after(async () => {
    await outage?.up();
    await kafka?.mock?.brokerUp(1);
    await app?.close();
    await bus?.close();
    await kafka?.stop();
    await outage?.close();
  });

  const readyz = async (): Promise<{ status: number; body: Readiness }> => {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    return { status: res.statusCode, body: res.json() as Readiness };
  };
  const until = async (status: number, ms = 30_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const r = await readyz();
      if (r.status === status) return r;
      if (Date.now() > deadline) throw new Error(`/readyz still ${r.status}: ${JSON.stringify(r.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  it('goes 503 naming the database when it is away, 200 when it is back', async () => {
    await until(200);
    await outage.down();
    const down = await until(503);
    assert.equal(down.body.checks.database?.ok, false, `${outage.how}: ${JSON.stringify(down.body)}`);
    assert.doesNotMatch(JSON.stringify(down.body), /postgres:\/\/|127\.0\.0\.1|password/i);
    assert.equal(
      (await app.inject({ method: 'GET', url: '/healthz' })).statusCode,
      200,
      'alive while not ready',
    );
    await outage.up();
    const back = await until(200);
    assert.equal(back.body.checks.database?.ok, true);
  });

  it('goes 503 naming the consumer while the broker is down, 200 once it is back and the group assigned', async (t) => {
    await until(200);
    const started = Date.now();
    await mockOf(kafka).brokerDown(1);
    let down: Awaited<ReturnType<typeof readyz>>;
    try {
      down = await until(503, 60_000);
    } finally {
      await mockOf(kafka).brokerUp(1);
    }
    assert.equal(down.body.checks.consumer?.ok, false, JSON.stringify(down.body));
    assert.equal(down.body.checks.database?.ok, true);
    const notReadyAfter = Date.now() - started;
    const back = await until(200, 60_000);
    assert.equal(back.body.checks.consumer?.ok, true);
    t.diagnostic(
      `broker down → /readyz 503 after ${notReadyAfter} ms; back → 200 after ${Date.now() - started} ms in all`,
    );
  });
});
