/**
 * accounts does not wait for Kafka to start (issue 10, item 1): with every broker down it is live
 * at once, takes commands (their events wait in the outbox), and `/readyz` names the relay as
 * connecting; once the brokers are back it becomes ready and the event committed meanwhile is on
 * the topic. The production build, as a process (`npm run build` first).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { generateLinkTokenKey, topics } from '@sitemail/contracts';
import { type MockKafka, readTopic, startMockKafka } from '@sitemail/testkit';
import { call, newPerson } from '../e2e/client.ts';
import { type PrivatePostgres, startPrivatePostgres } from './postgres.ts';
import {
  assertBuilt,
  liveWithin,
  readiness,
  type ServiceInstance,
  startInstance,
  waitReady,
} from './processes.ts';

let postgres: PrivatePostgres;
let kafka: MockKafka;
let accounts: ServiceInstance | undefined;

before(async () => {
  assertBuilt();
  postgres = await startPrivatePostgres();
  kafka = await startMockKafka({ brokers: 3, topics: [{ name: topics.accountsEvents, partitions: 3 }] });
});

after(async () => {
  await accounts?.stop();
  await kafka?.stop();
  await postgres?.stop();
});

describe('accounts with Kafka down at start', () => {
  it('is live at once, accepts a sign-up, is ready and publishes it once the brokers are back', async () => {
    for (const id of kafka.brokerIds) await kafka.brokerDown(id);
    const databaseUrl = await postgres.createDatabase('accounts_live');
    accounts = await startInstance('accounts', 'accounts-1', {
      DATABASE_URL: databaseUrl,
      KAFKA_BROKERS: kafka.brokers.join(','),
      LINK_TOKEN_KEY: generateLinkTokenKey('chaos'),
      LOG_LEVEL: 'info',
    });
    // Live with no broker at all: the start no longer awaits the producer's connect.
    const live = liveWithin(accounts, 2_000);
    console.log(`accounts ${live.how}`);
    assert.ok(live.ok, live.how);
    const notReady = await readiness(accounts);
    assert.notEqual(notReady, true, 'not ready while no broker answers');
    assert.match(String(notReady), /relay.*connecting to the bus/);

    const person = newPerson('live');
    const signUp = await call(accounts.url, 'POST', '/sign-up', { body: person });
    assert.equal(signUp.status, 201, 'commands are taken while the bus is away');

    for (const id of kafka.brokerIds) await kafka.brokerUp(id);
    const readyMs = await waitReady(accounts, 90_000);
    console.log(`ready ${readyMs} ms after the brokers came back`);
    const messages = await readTopic(kafka.brokers, topics.accountsEvents, { count: 1, timeoutMs: 60_000 });
    assert.equal(JSON.parse(messages[0]?.value ?? '{}').type, 'UserCreated');
    assert.doesNotMatch(accounts.output(), /onReady' hook timed out/);
  });
});
