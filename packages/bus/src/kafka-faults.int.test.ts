// Fault injection needs the mock cluster, so these run on it even when KAFKA_BROKERS is set.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type MockKafka, readTopic, startMockKafka } from '@sitemail/testkit';
import { type KafkaBusOptions, kafkaBus } from './kafka.ts';
import type { Bus } from './types.ts';

const until = async (what: string, check: () => boolean, limitMs = 90_000) => {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('kafka bus under faults (librdkafka mock cluster)', () => {
  let mock: MockKafka;
  const buses: Bus[] = [];
  const openBus = (extra: Partial<KafkaBusOptions> = {}) => {
    const bus = kafkaBus({
      brokers: mock.brokers,
      clientId: 'bus-faults',
      logLevel: 'nothing',
      sessionTimeoutMs: 4000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
      ...extra,
    });
    buses.push(bus);
    return bus;
  };
  before(async () => {
    mock = await startMockKafka({
      brokers: 1,
      topics: [
        { name: 'outage', partitions: 2 },
        { name: 'slow', partitions: 1 },
        { name: 'unacked', partitions: 1 },
      ],
    });
  });
  after(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await mock.stop();
  });

  test('publish rejects while the broker is down, and works again once it is up', async () => {
    const bus = openBus({ retries: 1 });
    const publisher = await bus.publisher();
    await publisher.publish('unacked', [{ key: 'k', value: 'before' }]);
    await mock.brokerDown(1);
    try {
      await assert.rejects(publisher.publish('unacked', [{ key: 'k', value: 'during' }]));
    } finally {
      await mock.brokerUp(1);
    }
    // The caller retries the whole call, as the relay does.
    for (let attempt = 1; ; attempt++) {
      try {
        await publisher.publish('unacked', [{ key: 'k', value: 'after' }]);
        break;
      } catch (e) {
        if (attempt === 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    await publisher.close();
    const read = await readTopic(mock.brokers, 'unacked', { count: 2 });
    assert.deepEqual(
      read.map((m) => m.value),
      ['before', 'after'],
    );
  });

  test('a consumer rides out a broker outage: everything published before and after is handled, in key order', async () => {
    const bus = openBus();
    const handled: string[] = [];
    const consumer = bus.consumer<string>({
      groupId: 'outage-group',
      topics: ['outage'],
      fromBeginning: true,
      deadLetterTopic: 'outage.dlq',
      decode: (m) => `${m.key}:${m.value}`,
      handleBatch: async (batch) => {
        handled.push(...batch.map((d) => d.value));
      },
      onError: () => {},
    });
    await consumer.start();
    const publisher = await bus.publisher();
    await publisher.publish('outage', [
      { key: 'a', value: '1' },
      { key: 'b', value: '1' },
      { key: 'a', value: '2' },
    ]);
    await until('first three handled', () => handled.length >= 3);
    await mock.brokerDown(1);
    await new Promise((r) => setTimeout(r, 3000));
    await mock.brokerUp(1);
    await publisher.publish('outage', [
      { key: 'a', value: '3' },
      { key: 'b', value: '2' },
    ]);
    await until('all five handled', () => new Set(handled).size >= 5);
    await consumer.stop();
    await publisher.close();
    // At least once: a commit lost in the outage may redeliver, but nothing is lost or reordered.
    const firstSeen = [...new Set(handled)];
    assert.deepEqual(
      firstSeen.filter((v) => v.startsWith('a:')),
      ['a:1', 'a:2', 'a:3'],
    );
    assert.deepEqual(
      firstSeen.filter((v) => v.startsWith('b:')),
      ['b:1', 'b:2'],
    );
  });

  test('a handler slower than the session timeout keeps its membership: the batch is not handed out again', async () => {
    const bus = openBus();
    const batches: string[][] = [];
    const consumer = bus.consumer<string>({
      groupId: 'slow-group',
      topics: ['slow'],
      fromBeginning: true,
      deadLetterTopic: 'slow.dlq',
      decode: (m) => String(m.value),
      handleBatch: async (batch) => {
        batches.push(batch.map((d) => d.value));
        if (batch.some((d) => d.value === 'slow')) await new Promise((r) => setTimeout(r, 6000));
      },
    });
    await consumer.start();
    const publisher = await bus.publisher();
    await publisher.publish('slow', [{ key: 'k', value: 'slow' }]);
    await until('slow handled', () => batches.length >= 1);
    await publisher.publish('slow', [{ key: 'k', value: 'next' }]);
    await until('next handled', () => batches.flat().includes('next'));
    await consumer.stop();
    await publisher.close();
    assert.deepEqual(batches.flat(), ['slow', 'next'], 'the 6 s handler (session timeout 4 s) ran once');
  });

  test('a consumer started while the broker is down retries its join (shown as retrying, never thrown) and is assigned once it is back', async () => {
    const bus = openBus({ retries: 1 });
    const phases: string[] = [];
    const consumer = bus.consumer<string>({
      groupId: 'late-group',
      topics: ['outage'],
      deadLetterTopic: 'outage.dlq',
      decode: (m) => String(m.value),
      handleBatch: async () => {},
      onStateChange: (state) => phases.push(state.phase),
    });
    assert.equal(consumer.state().phase, 'stopped');
    await mock.brokerDown(1);
    let started: Promise<void>;
    try {
      started = consumer.start();
      await until('a failed join', () => consumer.state().phase === 'retrying', 30_000);
      const retrying = consumer.state();
      assert.equal(retrying.groupId, 'late-group');
      assert.ok((retrying.attempt ?? 0) >= 1 && (retrying.retryInMs ?? 0) > 0, JSON.stringify(retrying));
      assert.match(retrying.reason ?? '', /\w/);
    } finally {
      await mock.brokerUp(1);
    }
    await started;
    assert.equal(consumer.state().phase, 'assigned');
    assert.equal(consumer.state().partitions, 2);
    await consumer.stop();
    assert.equal(consumer.state().phase, 'stopped');
    assert.deepEqual(
      [phases[0], phases.includes('retrying'), phases.at(-2), phases.at(-1)],
      ['joining', true, 'assigned', 'stopped'],
    );
  });

  test('stopped mid-join, a consumer still leaves the group (kafkajs sends LeaveGroup only once joined)', async () => {
    const lines: string[] = [];
    const keep = (_obj: object, msg?: string) => void lines.push(msg ?? '');
    const bus = openBus({ logLevel: 'debug', logger: { info: keep, warn: keep, error: keep, debug: keep } });
    const consumer = bus.consumer<string>({
      groupId: 'mid-join-group',
      topics: ['outage'],
      deadLetterTopic: 'outage.dlq',
      decode: (m) => String(m.value),
      handleBatch: async () => {},
    });
    const started = consumer.start();
    // The mock cluster holds every first join for about 3 s: this stop comes in the middle of it.
    await until('a join request sent', () => lines.some((l) => /Request JoinGroup/.test(l)), 30_000);
    assert.equal(consumer.state().phase, 'joining');
    await consumer.stop();
    await started;
    assert.equal(consumer.state().phase, 'stopped');
    assert.ok(
      lines.some((l) => /Request LeaveGroup/.test(l)),
      `no LeaveGroup request among ${lines.filter((l) => /Request \w+/.test(l)).length} requests`,
    );
  });
});
