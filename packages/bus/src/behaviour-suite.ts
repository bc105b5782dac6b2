// The bus contract as tests, run against every implementation (Kafka over the mock cluster or a
// real broker, and the in-process bus), so `npm start`'s embedded mode behaves like production.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DEAD_LETTER_HEADERS } from './messages.ts';
import type { BatchErrorContext, Bus, BusMessage, ConsumerOptions, DecodedMessage } from './types.ts';
import { MalformedMessageError } from './types.ts';

export interface BusHarness {
  /** Called once before the suite. */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A new bus over the same backing store (same cluster, same data dir); the previous one is closed first. */
  openBus(): Bus;
  /** Makes the topic exist with this many partitions where the implementation has partitions. */
  createTopic(name: string, partitions: number): Promise<void>;
}

interface Event {
  key: string;
  seq: number;
}

const decodeEvent = (m: BusMessage): Event => {
  const text = m.value?.toString() ?? '';
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MalformedMessageError('value is not JSON');
  }
  const seq = (body as { seq?: unknown }).seq;
  if (typeof seq !== 'number') {
    throw new MalformedMessageError('seq must be a number', [{ path: '/seq', message: 'Expected number' }]);
  }
  return { key: m.key ?? '', seq };
};

const event = (key: string, seq: number) => ({ key, value: JSON.stringify({ seq }) });

/** Polls `check` until it holds; the limit only turns a hang into a readable failure. */
async function until(what: string, check: () => boolean, limitMs = 60_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const quietErrors =
  (into: Array<{ error: unknown; context: BatchErrorContext }>) =>
  (error: unknown, context: BatchErrorContext) =>
    into.push({ error, context });

export function busBehaviourSuite(name: string, harness: BusHarness): void {
  describe(`bus behaviour: ${name}`, () => {
    let bus: Bus;
    const unique = () => randomBytes(4).toString('hex');
    const reopen = async () => {
      await bus.close();
      bus = harness.openBus();
      return bus;
    };

    before(async () => {
      await harness.setup();
      bus = harness.openBus();
    });
    after(async () => {
      await bus?.close();
      await harness.teardown();
    });

    /** A consumer that records every batch it is handed, in order. */
    const recorder = (
      overrides: Partial<ConsumerOptions<Event>> & { topics: string[] },
      handle?: (batch: DecodedMessage<Event>[]) => Promise<void>,
    ) => {
      const batches: DecodedMessage<Event>[][] = [];
      const handled: Event[] = [];
      const errors: Array<{ error: unknown; context: BatchErrorContext }> = [];
      const consumer = bus.consumer<Event>({
        groupId: `g-${unique()}`,
        fromBeginning: true,
        deadLetterTopic: `dlq-${unique()}`,
        decode: decodeEvent,
        retryBackoff: { initialMs: 50, maxMs: 200 },
        onError: quietErrors(errors),
        ...overrides,
        handleBatch: async (batch) => {
          batches.push(batch);
          await handle?.(batch);
          handled.push(...batch.map((d) => d.value));
        },
      });
      return { consumer, batches, handled, errors };
    };

    test('keeps per-key order across partitions and publish calls; batches are one partition in offset order', async () => {
      const topic = `order-${unique()}`;
      await harness.createTopic(topic, 3);
      const publisher = await bus.publisher();
      const keys = ['user-a', 'user-b', 'user-c', 'user-d'];
      for (let call = 0; call < 10; call++) {
        await publisher.publish(
          topic,
          Array.from({ length: 12 }, (_, i) =>
            event(keys[i % keys.length]!, call * 3 + Math.floor(i / keys.length)),
          ),
        );
      }
      await publisher.close();
      const r = recorder({ topics: [topic] });
      await r.consumer.start();
      await until('120 events handled', () => r.handled.length >= 120);
      await r.consumer.stop();
      assert.equal(r.handled.length, 120, 'each event handled once');
      for (const key of keys) {
        assert.deepEqual(
          r.handled.filter((e) => e.key === key).map((e) => e.seq),
          Array.from({ length: 30 }, (_, i) => i),
          `order of ${key}`,
        );
      }
      for (const batch of r.batches) {
        assert.equal(new Set(batch.map((d) => d.message.partition)).size, 1, 'one partition per batch');
        const offsets = batch.map((d) => BigInt(d.message.offset));
        assert.deepEqual(
          offsets,
          [...offsets].sort((x, y) => (x < y ? -1 : 1)),
          'offsets ascending',
        );
        for (const d of batch) assert.equal(d.message.topic, topic);
      }
    });

    test('a malformed message goes to the dead-letter topic with why and where; the next one is processed', async () => {
      const topic = `dl-${unique()}`;
      const deadLetterTopic = `${topic}.dlq`;
      await harness.createTopic(topic, 1);
      await harness.createTopic(deadLetterTopic, 1);
      const publisher = await bus.publisher();
      await publisher.publish(topic, [
        event('user-1', 1),
        { key: 'user-1', value: '{"seq":"two"}', headers: { 'ce-type': 'UserCreated', 'ce-id': 'evt-2' } },
        { key: 'user-1', value: 'not json' },
        event('user-1', 4),
      ]);
      await publisher.close();

      const main = recorder({ topics: [topic], deadLetterTopic });
      const dead: BusMessage[] = [];
      const dlqReader = bus.consumer<BusMessage>({
        groupId: `dlq-reader-${unique()}`,
        topics: [deadLetterTopic],
        fromBeginning: true,
        deadLetterTopic: `${deadLetterTopic}.dlq`,
        decode: (m) => m,
        handleBatch: async (batch) => {
          dead.push(...batch.map((d) => d.value));
        },
      });
      await Promise.all([main.consumer.start(), dlqReader.start()]);
      await until('2 events handled and 2 dead letters', () => main.handled.length >= 2 && dead.length >= 2);
      await Promise.all([main.consumer.stop(), dlqReader.stop()]);

      assert.deepEqual(
        main.handled.map((e) => e.seq),
        [1, 4],
      );
      assert.equal(main.errors.length, 0, 'a malformed message is not a failure to retry');
      assert.equal(dead.length, 2);
      const [first, second] = dead as [BusMessage, BusMessage];
      assert.equal(first.key, 'user-1');
      assert.equal(first.value?.toString(), '{"seq":"two"}');
      assert.equal(first.headers['ce-type'], 'UserCreated', 'original headers kept');
      assert.equal(first.headers['ce-id'], 'evt-2');
      assert.equal(first.headers[DEAD_LETTER_HEADERS.reason], 'seq must be a number');
      assert.deepEqual(JSON.parse(first.headers[DEAD_LETTER_HEADERS.problems] ?? 'null'), [
        { path: '/seq', message: 'Expected number' },
      ]);
      assert.equal(first.headers[DEAD_LETTER_HEADERS.topic], topic);
      assert.equal(first.headers[DEAD_LETTER_HEADERS.partition], '0');
      assert.equal(first.headers[DEAD_LETTER_HEADERS.offset], '1');
      assert.equal(second.value?.toString(), 'not json');
      assert.equal(second.headers[DEAD_LETTER_HEADERS.reason], 'value is not JSON');
      assert.equal(second.headers[DEAD_LETTER_HEADERS.offset], '2');
    });

    test('a failing handler gets the batch again after a backoff; nothing is skipped or handled twice once it succeeds', async () => {
      const topic = `retry-${unique()}`;
      await harness.createTopic(topic, 1);
      const publisher = await bus.publisher();
      await publisher.publish(
        topic,
        [0, 1, 2, 3, 4].map((i) => event('user-r', i)),
      );
      await publisher.close();
      let failuresLeft = 2;
      const r = recorder({ topics: [topic] }, async (batch) => {
        if (batch.some((d) => d.value.seq === 2) && failuresLeft > 0) {
          failuresLeft--;
          throw new Error('database unavailable');
        }
      });
      await r.consumer.start();
      await until('5 events handled', () => r.handled.length >= 5);
      await r.consumer.stop();
      assert.deepEqual(
        r.handled.map((e) => e.seq),
        [0, 1, 2, 3, 4],
        'successful handling: each once, in order',
      );
      const deliveriesOf2 = r.batches.filter((b) => b.some((d) => d.value.seq === 2)).length;
      assert.equal(deliveriesOf2, 3, 'delivered until the handler succeeded');
      assert.deepEqual(
        r.errors.map((e) => [e.context.attempt, (e.error as Error).message]),
        [
          [1, 'database unavailable'],
          [2, 'database unavailable'],
        ],
      );
    });

    test('a restarted consumer resumes after the last committed batch: nothing lost, nothing handled again', async () => {
      const topic = `resume-${unique()}`;
      const groupId = `resume-${unique()}`;
      await harness.createTopic(topic, 1);
      let publisher = await bus.publisher();
      await publisher.publish(
        topic,
        [0, 1, 2, 3, 4].map((i) => event('user-s', i)),
      );
      const first = recorder({ topics: [topic], groupId });
      await first.consumer.start();
      await until('first 5 handled', () => first.handled.length >= 5);
      await first.consumer.stop();
      await publisher.close();

      await reopen();
      publisher = await bus.publisher();
      await publisher.publish(
        topic,
        [5, 6, 7].map((i) => event('user-s', i)),
      );
      const second = recorder({ topics: [topic], groupId });
      await second.consumer.start();
      // One partition: once 7 is handled, anything older would have come first.
      await until('7 handled', () => second.handled.some((e) => e.seq === 7));
      await second.consumer.stop();
      await publisher.close();
      assert.deepEqual(
        first.handled.map((e) => e.seq),
        [0, 1, 2, 3, 4],
      );
      assert.deepEqual(
        second.handled.map((e) => e.seq),
        [5, 6, 7],
      );
    });

    test('stop() finishes and commits the batch in hand; a batch still failing at stop is redelivered later', async () => {
      const topic = `stop-${unique()}`;
      const groupId = `stop-${unique()}`;
      await harness.createTopic(topic, 1);
      let publisher = await bus.publisher();
      await publisher.publish(topic, [event('user-t', 0)]);

      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const slow = recorder({ topics: [topic], groupId }, () => gate);
      await slow.consumer.start();
      await until('handler entered', () => slow.batches.length === 1);
      let stopped = false;
      const stopping = slow.consumer.stop().then(() => {
        stopped = true;
      });
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(stopped, false, 'stop waits for the handler in hand');
      release();
      await stopping;
      assert.deepEqual(
        slow.handled.map((e) => e.seq),
        [0],
      );

      // Seq 1 fails for as long as this consumer runs; stopping abandons it uncommitted.
      await publisher.publish(topic, [event('user-t', 1)]);
      const failing = recorder({ topics: [topic], groupId }, async () => {
        throw new Error('smtp down');
      });
      await failing.consumer.start();
      await until('seq 1 attempted twice', () => failing.errors.length >= 2);
      await failing.consumer.stop();
      assert.equal(failing.handled.length, 0);
      assert.ok(
        failing.batches.every((b) => b.every((d) => d.value.seq === 1)),
        'seq 0 was committed',
      );
      await publisher.close();

      await reopen();
      publisher = await bus.publisher();
      await publisher.publish(topic, [event('user-t', 2)]);
      await publisher.close();
      const healthy = recorder({ topics: [topic], groupId });
      await healthy.consumer.start();
      await until('seq 2 handled', () => healthy.handled.some((e) => e.seq === 2));
      await healthy.consumer.stop();
      assert.deepEqual(
        healthy.handled.map((e) => e.seq),
        [1, 2],
      );
    });

    test('publish rejects bad input naming the field, and writes none of the call', async () => {
      const topic = `bad-${unique()}`;
      await harness.createTopic(topic, 1);
      const publisher = await bus.publisher();
      await assert.rejects(
        publisher.publish(topic, [event('k', 1), { key: 7, value: 'x' } as never]),
        /messages\[1\]\.key: expected a string/,
      );
      await assert.rejects(
        publisher.publish(topic, [event('k', 1), { key: 'k', value: 'x', headers: { 'ce-id': 5 } } as never]),
        /messages\[1\]\.headers\.ce-id: expected a string/,
      );
      await assert.rejects(
        publisher.publish('no spaces allowed', [event('k', 1)]),
        /topic: invalid topic name/,
      );
      await publisher.publish(topic, [event('k', 9)]);
      await publisher.close();
      const r = recorder({ topics: [topic] });
      await r.consumer.start();
      await until('the good publish arrived', () => r.handled.length >= 1);
      await r.consumer.stop();
      assert.deepEqual(
        r.handled.map((e) => e.seq),
        [9],
        'nothing of the rejected calls was written',
      );
    });
  });
}
