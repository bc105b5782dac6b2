import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { type TestKafka, testKafka } from '@sitemail/testkit';
import { busBehaviourSuite } from './behaviour-suite.ts';
import { kafkaBus } from './kafka.ts';

let kafka: TestKafka;
// Short group timeouts: the mock cluster holds a re-join after a leave for session timeout - 1 s.
// A short fetch wait keeps stop() quick.
const openBus = () =>
  kafkaBus({
    brokers: kafka.brokers,
    clientId: 'bus-test',
    logLevel: 'error',
    sessionTimeoutMs: 4000,
    rebalanceTimeoutMs: 3000,
    heartbeatIntervalMs: 500,
    maxWaitTimeMs: 300,
  });
busBehaviourSuite(process.env.KAFKA_BROKERS ? 'kafka (KAFKA_BROKERS)' : 'kafka (librdkafka mock cluster)', {
  async setup() {
    kafka = await testKafka();
  },
  teardown: () => kafka.stop(),
  openBus,
  createTopic: (name, partitions) => kafka.createTopic(name, partitions),
});

describe('kafka consumer: partitionsConsumedConcurrently', () => {
  let local: TestKafka;
  before(async () => {
    local = await testKafka();
  });
  after(() => local.stop());

  test('handles batches of several partitions at once, never two of one partition, keeping per-key order', async () => {
    const topic = `concurrent-${randomBytes(4).toString('hex')}`;
    await local.createTopic(topic, 3);
    const bus = kafkaBus({
      brokers: local.brokers,
      clientId: 'bus-concurrency',
      logLevel: 'error',
      sessionTimeoutMs: 4000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
    });
    try {
      assert.throws(
        () =>
          bus.consumer({
            groupId: 'g',
            topics: [topic],
            deadLetterTopic: `${topic}.dlq`,
            decode: String,
            handleBatch: async () => {},
            partitionsConsumedConcurrently: 0,
          }),
        /partitionsConsumedConcurrently/,
      );
      const publisher = await bus.publisher();
      const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
      for (let round = 0; round < 10; round++)
        await publisher.publish(
          topic,
          keys.map((key) => ({ key, value: String(round) })),
        );
      await publisher.close();

      const inFlight = new Map<number, number>();
      let most = 0;
      let samePartitionTwice = false;
      const seen = new Map<string, number[]>();
      const consumer = bus.consumer<number>({
        groupId: `g-${randomBytes(4).toString('hex')}`,
        topics: [topic],
        fromBeginning: true,
        deadLetterTopic: `${topic}.dlq`,
        decode: (m) => Number(m.value?.toString()),
        // Small batches and a slow handler: with one at a time the partitions would take turns.
        maxBatchSize: 2,
        partitionsConsumedConcurrently: 3,
        handleBatch: async (batch) => {
          const partition = batch[0]!.message.partition;
          const mine = (inFlight.get(partition) ?? 0) + 1;
          if (mine > 1) samePartitionTwice = true;
          inFlight.set(partition, mine);
          most = Math.max(
            most,
            [...inFlight.values()].reduce((n, v) => n + v, 0),
          );
          await new Promise((r) => setTimeout(r, 40));
          for (const d of batch)
            seen.set(d.message.key ?? '', [...(seen.get(d.message.key ?? '') ?? []), d.value]);
          inFlight.set(partition, mine - 1);
        },
      });
      await consumer.start();
      const deadline = Date.now() + 30_000;
      while ([...seen.values()].reduce((n, v) => n + v.length, 0) < 60) {
        if (Date.now() > deadline) throw new Error('gave up waiting for 60 messages');
        await new Promise((r) => setTimeout(r, 20));
      }
      await consumer.stop();
      assert.ok(most >= 2, `at most ${most} batch(es) in flight at once`);
      assert.equal(samePartitionTwice, false, 'two batches of one partition were in flight at once');
      for (const key of keys)
        assert.deepEqual(
          seen.get(key),
          Array.from({ length: 10 }, (_, i) => i),
          `order of ${key}`,
        );
    } finally {
      await bus.close();
    }
  });
});
