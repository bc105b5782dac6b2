// A 3-broker mock cluster, always (fault injection): partition leaders moving and a broker down
// while a consumer runs. Each test is bounded in seconds: recovery must not wait for an operator.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type MockKafka, startMockKafka } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { type KafkaBusOptions, kafkaBus } from './kafka.ts';
import type { Bus, ConsumerState } from './types.ts';

const until = async (what: string, check: () => boolean, limitMs: number) => {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${limitMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('kafka consumer on a 3-broker cluster: leaders moving, a broker down', () => {
  let mock: MockKafka;
  const buses: Bus[] = [];
  const lines: string[] = [];
  const keep = (obj: object, msg?: string) =>
    void lines.push(`${Date.now()} ${msg ?? ''} ${JSON.stringify(obj)}`);
  const openBus = (extra: Partial<KafkaBusOptions> = {}) => {
    const bus = kafkaBus({
      brokers: mock.brokers,
      clientId: 'bus-leaders',
      logLevel: 'warn',
      logger: { info: keep, warn: keep, error: keep, debug: keep },
      sessionTimeoutMs: 4000,
      rebalanceTimeoutMs: 3000,
      heartbeatIntervalMs: 500,
      maxWaitTimeMs: 300,
      // The mock holds each rejoin for the 3 s rebalance timeout and a leader move costs kafkajs
      // two of them: a shorter watchdog would restart members in the middle of their recovery.
      progressTimeoutMs: 10_000,
      ...extra,
    });
    buses.push(bus);
    return bus;
  };
  before(async () => {
    mock = await startMockKafka({
      brokers: 3,
      topics: [
        { name: 'moving', partitions: 12 },
        { name: 'outage', partitions: 12 },
        { name: 'idle', partitions: 3 },
        { name: 'publish-move', partitions: 2 },
      ],
    });
  });
  after(async () => {
    await Promise.allSettled(buses.map((b) => b.close()));
    await mock.stop();
  });

  const messages = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => ({ key: `k${(from + i) % 17}`, value: String(from + i) }));

  test('a publish spanning two brokers while one partition leader moves writes every message', async () => {
    // kafkajs 2.2.4's send keeps the answers of the brokers that took their part across its
    // retries and, after a metadata refresh, skips any broker that answered before: a partition
    // whose leader moved to such a broker was never written, and send() still resolved.
    await mock.setLeader('publish-move', 0, 1);
    await mock.setLeader('publish-move', 1, 2);
    const publisher = await openBus().publisher();
    const admin = new Kafka({
      brokers: mock.brokers,
      clientId: 'publish-admin',
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      // The publisher learns the leaders (p0 on broker 1, p1 on broker 2) with a first message.
      await publisher.publish('publish-move', [{ key: 'warm-up', value: 'warm-up' }]);
      // p1 moves to broker 1: the next publish sends p1's part to broker 2 (not the leader any
      // more) and p0's to broker 1, which takes it.
      await mock.setLeader('publish-move', 1, 1);
      const batch = Array.from({ length: 40 }, (_, i) => ({ key: `key-${i}`, value: String(i) }));
      await publisher.publish('publish-move', batch);
      const written = (await admin.fetchTopicOffsets('publish-move')).map((p) => Number(p.high));
      assert.ok(
        written.every((n) => n > 1),
        `both partitions took part of the batch: ${written.join(', ')}`,
      );
      // At least once: a partition whose part was taken before the failure may hold it twice.
      assert.ok(
        written.reduce((a, b) => a + b, 0) >= 41,
        `every message written: ${written.join(' + ')} messages on the partitions, 41 published`,
      );
    } finally {
      await admin.disconnect();
      await publisher.close();
    }
  });

  test('after every partition leader moves, what is published next is all consumed within seconds', async () => {
    // Two members of one group, as two service instances, handling while the leaders move.
    const handled = new Set<string>();
    const phases: string[] = [];
    let moved = 0;
    const members = [openBus(), openBus()].map((bus) =>
      bus.consumer<string>({
        groupId: 'moving-group',
        topics: ['moving'],
        fromBeginning: true,
        deadLetterTopic: 'moving.dlq',
        decode: (m) => String(m.value),
        maxBatchSize: 20,
        handleBatch: async (batch) => {
          await new Promise((r) => setTimeout(r, 5));
          for (const d of batch) handled.add(d.value);
        },
        onError: () => {},
        onStateChange: (st) =>
          phases.push(`${Date.now() - (moved || Date.now())} ${st.phase} ${st.reason ?? ''}`),
      }),
    );
    await Promise.all(members.map((m) => m.start()));
    const publisher = await openBus().publisher();
    await publisher.publish('moving', messages(0, 600));
    await until('the first 600 handled', () => handled.size >= 600, 20_000);
    const more = (async () => {
      for (let i = 0; i < 20; i++) {
        await publisher.publish('moving', messages(600 + i * 30, 30));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const admin = new Kafka({
      brokers: mock.brokers,
      clientId: 'leaders-admin',
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const [meta] = (await admin.fetchTopicMetadata({ topics: ['moving'] })).topics;
      for (const p of meta!.partitions) await mock.setLeader('moving', p.partitionId, (p.leader % 3) + 1);
    } finally {
      await admin.disconnect();
    }
    moved = Date.now();
    await more;
    await until('all 1200 handled after the move', () => handled.size >= 1200, 15_000).catch(
      async (e: Error) => {
        // What a failure needs to be told apart: never handled, or never written, and where the group stands.
        const missing = Array.from({ length: 1200 }, (_, i) => String(i)).filter((v) => !handled.has(v));
        const diag = new Kafka({
          brokers: mock.brokers,
          clientId: 'diag',
          logLevel: logLevel.NOTHING,
        }).admin();
        await diag.connect();
        const ends = await diag.fetchTopicOffsets('moving');
        const [committed] = await diag.fetchOffsets({ groupId: 'moving-group', topics: ['moving'] });
        await diag.disconnect();
        const where = ends
          .map(
            (x) =>
              `${x.partition}: end ${x.high}, committed ${committed?.partitions.find((c) => c.partition === x.partition)?.offset}`,
          )
          .join('; ');
        throw new Error(
          `${e.message}: ${handled.size} handled, missing ${missing.slice(0, 20).join(' ')}; ${where}; states:\n${phases.join('\n')}\nbus/kafkajs said:\n${lines.slice(-20).join('\n')}`,
        );
      },
    );
    console.log(`leaders moved: all handled ${Date.now() - moved} ms later`);
    assert.equal(handled.size, 1200);
    await publisher.close();
    await Promise.all(members.map((m) => m.stop()));
  });

  test('a broker down for 8 s while publishing: everything is consumed once it is back, no member stuck', async () => {
    const handled = new Set<string>();
    const phases: string[] = [];
    let downAt = 0;
    const members = [openBus(), openBus()].map((bus) =>
      bus.consumer<string>({
        groupId: 'outage-group',
        topics: ['outage'],
        fromBeginning: true,
        deadLetterTopic: 'outage.dlq',
        decode: (m) => String(m.value),
        maxBatchSize: 20,
        handleBatch: async (batch) => {
          for (const d of batch) handled.add(d.value);
        },
        onError: () => {},
        onStateChange: (st) =>
          phases.push(`${Date.now() - (downAt || Date.now())} ${st.phase} ${st.reason ?? ''}`),
      }),
    );
    await Promise.all(members.map((m) => m.start()));
    const publisher = await openBus({ retries: 2 }).publisher();
    await publisher.publish('outage', messages(0, 300));
    await until('the first 300 handled', () => handled.size >= 300, 20_000);

    // The relay's way: a rejected publish is retried whole, so nothing is lost while a broker is away.
    const publishAll = async (from: number) => {
      for (;;) {
        try {
          return await publisher.publish('outage', messages(from, 30));
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    };
    await mock.brokerDown(2);
    downAt = Date.now();
    // Publishing goes on through the outage (calls for partitions led by broker 2 wait for it).
    const during = (async () => {
      for (let i = 0; i < 10; i++) {
        await publishAll(300 + i * 30);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    await new Promise((r) => setTimeout(r, 8000));
    await mock.brokerUp(2);
    await during;
    const upAt = Date.now();
    await publishAll(600);
    await until('all 630 handled after the outage', () => handled.size >= 630, 15_000).catch((e: Error) => {
      throw new Error(
        `${e.message}: ${handled.size} handled; states:\n${phases.join('\n')}\nbus/kafkajs said:\n${lines.slice(-20).join('\n')}`,
      );
    });
    console.log(`broker down ${upAt - downAt} ms: all handled ${Date.now() - upAt} ms after it came back`);
    assert.equal(handled.size, 630);
    await publisher.close();
    await Promise.all(members.map((m) => m.stop()));
  });

  test('an idle member that has handled everything is never taken for stalled', async () => {
    const states: ConsumerState[] = [];
    let count = 0;
    const consumer = openBus({ progressTimeoutMs: 1500 }).consumer<string>({
      groupId: 'idle-group',
      topics: ['idle'],
      deadLetterTopic: 'idle.dlq',
      fromBeginning: true,
      decode: (m) => String(m.value),
      handleBatch: async (batch) => {
        count += batch.length;
      },
      onStateChange: (st) => states.push(st),
    });
    const publisher = await openBus().publisher();
    await publisher.publish('idle', messages(0, 9));
    await consumer.start();
    await until('the first 9 handled', () => count >= 9, 10_000);
    // Longer than the progress timeout, caught up.
    await new Promise((r) => setTimeout(r, 3500));
    await publisher.publish('idle', messages(9, 3));
    await until('the 3 new ones handled', () => count >= 12, 10_000).catch((e: Error) => {
      throw new Error(
        `${e.message}: ${count} handled; states: ${states.map((st) => `${st.phase} ${st.reason ?? ''}`).join(', ')}\n${lines.slice(-10).join('\n')}`,
      );
    });
    await new Promise((r) => setTimeout(r, 2500));
    await publisher.close();
    await consumer.stop();
    assert.equal(count, 12);
    assert.deepEqual(
      states.map((st) => st.phase),
      ['joining', 'assigned', 'stopped'],
    );
  });
});
