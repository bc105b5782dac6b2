// The consumer's group join does not hold up the start: the app is ready to serve while the join
// runs (the mock cluster holds every first join for about 3 s), and /readyz says so until then.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type Bus, kafkaBus } from '@sitemail/bus';
import { topics } from '@sitemail/contracts';
import { type TestDatabase, type TestKafka, testDatabaseKind, testKafka } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { testLinkKey } from '../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../test/harness.ts';
import { notificationsApp } from './app.ts';

describe(`notifications start and the consumer group (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let kafka: TestKafka;
  let bus: Bus;
  let app: FastifyInstance;

  before(async () => {
    db = await notificationsDb('group');
    kafka = await testKafka({
      topics: [
        { name: topics.accountsEvents, partitions: 2 },
        { name: topics.codeMonitoringEvents, partitions: 1 },
        { name: topics.notificationsDeadLetter, partitions: 1 },
      ],
    });
    bus = kafkaBus({
      brokers: kafka.brokers,
      clientId: 'group-test',
      logLevel: 'nothing',
      sessionTimeoutMs: 4000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
    });
  });
  after(async () => {
    await app?.close();
    await bus?.close();
    await kafka?.stop();
    await db?.close();
  });

  it('is ready to serve before the join completes; /readyz says "joining" until it is assigned', async () => {
    app = Fastify({ logger: false });
    await app.register(notificationsApp, {
      db,
      bus,
      siteConfig: () => siteFor(undefined),
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await app.ready();
    assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    const joining = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(joining.statusCode, 503);
    assert.match(joining.body, /joining group notifications \(\d+ s\)/);
    await eventually(async () =>
      (await app.inject({ method: 'GET', url: '/readyz' })).statusCode === 200 ? true : undefined,
    );
    assert.equal(app.notificationsConsumer?.state().phase, 'assigned');
    assert.equal(app.notificationsConsumer?.state().partitions, 3);
    await app.close();
    assert.equal(app.notificationsConsumer?.state().phase, 'stopped');
  });
});
