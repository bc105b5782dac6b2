import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { logLevel } from 'kafkajs';
import { brokersFromEnv, busFromEnv } from './index.ts';
import { quietLogCreator } from './kafka.ts';
import { partitionsBehind } from './kafka-consumer.ts';
import { shareGroupJoins } from './kafkajs-join.ts';
import { assertOutgoing, DEAD_LETTER_HEADERS, deadLetterHeaders, headersToStrings } from './messages.ts';
import { backoffMs, chunks, decodeBatch, processBatch } from './process-batch.ts';
import type { BusMessage, ConsumerOptions } from './types.ts';
import { MalformedMessageError } from './types.ts';

const message = (offset: number, value: string, headers: Record<string, string> = {}): BusMessage => ({
  topic: 'accounts.events',
  partition: 2,
  offset: String(offset),
  key: 'user-1',
  value: Buffer.from(value),
  headers,
  timestamp: 0,
});

describe('publish input checks', () => {
  test('accept string or Buffer values and string headers', () => {
    assertOutgoing('accounts.events', [
      { key: 'u', value: 'x' },
      { key: 'u', value: Buffer.from('y'), headers: { 'ce-id': '1' } },
    ]);
  });
  test('name the offending field and never echo the value', () => {
    assert.throws(
      () => assertOutgoing('t', [{ key: 'u', value: 42 }]),
      /^TypeError: messages\[0\]\.value: expected/,
    );
    assert.throws(
      () => assertOutgoing('t', [{ key: null, value: 'x' }]),
      /messages\[0\]\.key: expected a string/,
    );
    assert.throws(
      () => assertOutgoing('t', [{ key: 'u', value: 'x', headers: { secret: 123 } }]),
      (e: Error) => e.message === 'messages[0].headers.secret: expected a string',
    );
    assert.throws(() => assertOutgoing('t', 'nope'), /messages: expected an array/);
  });
  test('reject topic names Kafka would reject (and that would escape a data dir)', () => {
    for (const bad of ['', '..', 'a/b', 'has space', 'x'.repeat(250)]) {
      assert.throws(() => assertOutgoing(bad, []), /topic: invalid topic name/, bad);
    }
  });
});

describe('dead-letter headers', () => {
  test('keep the original headers and add why and where from', () => {
    const headers = deadLetterHeaders(
      message(17, '{}', { 'ce-type': 'UserCreated' }),
      new MalformedMessageError('does not match UserCreated', [
        { path: '/userId', message: 'Required property' },
      ]),
    );
    assert.deepEqual(headers, {
      'ce-type': 'UserCreated',
      [DEAD_LETTER_HEADERS.reason]: 'does not match UserCreated',
      [DEAD_LETTER_HEADERS.problems]: '[{"path":"/userId","message":"Required property"}]',
      [DEAD_LETTER_HEADERS.topic]: 'accounts.events',
      [DEAD_LETTER_HEADERS.partition]: '2',
      [DEAD_LETTER_HEADERS.offset]: '17',
    });
  });
  test('leave out the problems header when there are none', () => {
    const headers = deadLetterHeaders(message(0, ''), new MalformedMessageError('not JSON'));
    assert.equal(DEAD_LETTER_HEADERS.problems in headers, false);
  });
});

test('kafkajs header values become strings, repeated headers joined', () => {
  assert.deepEqual(
    headersToStrings({ a: Buffer.from('x'), b: 'y', c: [Buffer.from('1'), '2'], d: undefined }),
    {
      a: 'x',
      b: 'y',
      c: '1,2',
    },
  );
});

test('backoff doubles from the initial delay up to the cap', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 100].map((n) => backoffMs(n)),
    [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000],
  );
  assert.deepEqual(
    [1, 2, 3].map((n) => backoffMs(n, { initialMs: 10, maxMs: 25 })),
    [10, 20, 25],
  );
});

test('chunks keep order and size', () => {
  assert.deepEqual(chunks([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunks([], 3), []);
});

describe('decoding a batch', () => {
  const decode = (m: BusMessage) => {
    const text = m.value!.toString();
    if (text === 'bad') throw new MalformedMessageError('bad value');
    if (text === 'bug') throw new RangeError('decoder bug');
    return text.toUpperCase();
  };
  test('splits decoded messages from dead letters, keeping order', () => {
    const { decoded, deadLetters } = decodeBatch(
      [message(0, 'a'), message(1, 'bad'), message(2, 'c')],
      decode,
    );
    assert.deepEqual(
      decoded.map((d) => [d.message.offset, d.value]),
      [
        ['0', 'A'],
        ['2', 'C'],
      ],
    );
    assert.deepEqual(
      deadLetters.map((d) => [d.message.offset, d.error.message]),
      [['1', 'bad value']],
    );
  });
  test('an error other than MalformedMessageError is not a dead letter: it fails the batch', () => {
    assert.throws(() => decodeBatch([message(0, 'a'), message(1, 'bug')], decode), RangeError);
  });
  test('a MalformedMessageError from another copy of the package still counts', () => {
    class Foreign extends Error {
      override name = 'MalformedMessageError';
      problems = [];
    }
    const { deadLetters } = decodeBatch([message(0, 'x')], () => {
      throw new Foreign('other copy');
    });
    assert.equal(deadLetters.length, 1);
  });
});

describe('processing a batch', () => {
  const options = (handleBatch: ConsumerOptions<string>['handleBatch'], errors: unknown[] = []) =>
    ({
      groupId: 'g',
      topics: ['t'],
      deadLetterTopic: 't.dlq',
      decode: (m: BusMessage) => {
        if (m.value!.toString() === 'bad') throw new MalformedMessageError('bad');
        return m.value!.toString();
      },
      handleBatch,
      retryBackoff: { initialMs: 1, maxMs: 1 },
      onError: (e: unknown) => errors.push(e),
    }) satisfies ConsumerOptions<string>;

  test('dead letters are sent once even when the handler needs several attempts', async () => {
    let sends = 0;
    let attempts = 0;
    const outcome = await processBatch({
      options: options(async () => {
        attempts++;
        if (attempts < 3) throw new Error('not yet');
      }),
      topic: 't',
      partition: 0,
      messages: [message(0, 'ok'), message(1, 'bad')],
      signal: new AbortController().signal,
      sendDeadLetters: async () => {
        sends++;
      },
    });
    assert.equal(outcome, 'done');
    assert.equal(attempts, 3);
    assert.equal(sends, 1);
  });

  test('a dead-letter send that fails is retried before the handler runs', async () => {
    const order: string[] = [];
    let sendFailures = 1;
    await processBatch({
      options: options(async () => {
        order.push('handle');
      }),
      topic: 't',
      partition: 0,
      messages: [message(0, 'bad'), message(1, 'ok')],
      signal: new AbortController().signal,
      sendDeadLetters: async () => {
        order.push('send');
        if (sendFailures-- > 0) throw new Error('broker down');
      },
    });
    assert.deepEqual(order, ['send', 'send', 'handle']);
  });

  test('a batch of only malformed messages never calls the handler', async () => {
    let called = false;
    const outcome = await processBatch({
      options: options(async () => {
        called = true;
      }),
      topic: 't',
      partition: 0,
      messages: [message(0, 'bad')],
      signal: new AbortController().signal,
      sendDeadLetters: async () => {},
    });
    assert.equal(outcome, 'done');
    assert.equal(called, false);
  });

  test('stopping during the backoff gives up the batch as "stopped" (it stays uncommitted)', async () => {
    const abort = new AbortController();
    const errors: unknown[] = [];
    const outcome = await processBatch({
      options: {
        ...options(async () => {
          abort.abort();
          throw new Error('fails');
        }, errors),
        retryBackoff: { initialMs: 60_000 },
      },
      topic: 't',
      partition: 0,
      messages: [message(0, 'ok')],
      signal: abort.signal,
      sendDeadLetters: async () => {},
    });
    assert.equal(outcome, 'stopped');
    assert.equal(errors.length, 1);
  });
});

test('the kafkajs log line carries the message and the error, never the extra fields', () => {
  const lines: { level: string; obj: object; msg: string | undefined }[] = [];
  const collect = (level: string) => (obj: object, msg?: string) => lines.push({ level, obj, msg });
  const logger = { info: collect('info'), warn: collect('warn'), error: collect('error') };
  const log = quietLogCreator('notifications', logger)(logLevel.WARN);
  log({
    namespace: 'Runner',
    level: logLevel.ERROR,
    label: 'ERROR',
    log: {
      timestamp: 'now',
      message: 'Error when calling eachBatch',
      error: new Error('connection refused'),
      payload: 'token=sealed-secret',
      messages: [{ value: 'sealed-secret' }],
    } as never,
  });
  assert.deepEqual(lines, [
    {
      level: 'error',
      obj: {
        component: 'kafkajs',
        clientId: 'notifications',
        namespace: 'Runner',
        reason: 'connection refused',
      },
      msg: 'kafkajs Runner: Error when calling eachBatch (connection refused)',
    },
  ]);
  assert.ok(!JSON.stringify(lines).includes('sealed-secret'));
});

test('without a logger, kafkajs lines go to stderr as one JSON line each', () => {
  const written: string[] = [];
  const original = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    quietLogCreator('accounts')(logLevel.WARN)({
      namespace: 'Connection',
      level: logLevel.WARN,
      label: 'WARN',
      log: { timestamp: 'now', message: 'Connection timeout' } as never,
    });
  } finally {
    process.stderr.write = original;
  }
  assert.equal(written.length, 1);
  const line = JSON.parse(written[0]!);
  assert.equal(line.level, 40);
  assert.equal(line.msg, 'kafkajs Connection: Connection timeout');
  assert.equal(line.clientId, 'accounts');
});

describe('choosing the bus from the environment', () => {
  test('KAFKA_BROKERS is a comma-separated list; blank means unset', () => {
    assert.deepEqual(brokersFromEnv({ KAFKA_BROKERS: 'kafka:9092, other:9093,' }), [
      'kafka:9092',
      'other:9093',
    ]);
    assert.equal(brokersFromEnv({ KAFKA_BROKERS: ' , ' }), undefined);
    assert.equal(brokersFromEnv({}), undefined);
  });
  test('Kafka when set, in-process otherwise', async () => {
    const kafka = busFromEnv({ KAFKA_BROKERS: '127.0.0.1:1' }, { clientId: 'test', logLevel: 'nothing' });
    const local = busFromEnv({}, { clientId: 'test' });
    assert.equal(kafka.kind, 'kafka');
    assert.equal(local.kind, 'in-process');
    await Promise.all([kafka.close(), local.close()]);
  });
});

describe('the progress watchdog: which assigned partitions are behind', () => {
  const ends = {
    t: [
      { partition: 0, low: '0', high: '10' },
      { partition: 1, low: '4', high: '4' },
      { partition: 2, low: '2', high: '7' },
    ],
  };
  test('counts messages past the committed offset, only of assigned partitions', () => {
    const committed = {
      t: [
        { partition: 0, offset: '6' },
        { partition: 1, offset: '4' },
        { partition: 2, offset: '1' },
      ],
    };
    assert.deepEqual(partitionsBehind({ t: [0, 1] }, ends, committed, false, new Map()), [
      { topic: 't', partition: 0, messages: 4 },
    ]);
    assert.deepEqual(partitionsBehind({ t: [0, 1, 2] }, ends, committed, false, new Map()), [
      { topic: 't', partition: 0, messages: 4 },
      { topic: 't', partition: 2, messages: 6 },
    ]);
  });
  test('without a committed offset: from the low watermark (fromBeginning), else from the end first seen', () => {
    const none = { t: [0, 1, 2].map((partition) => ({ partition, offset: '-1' })) };
    assert.deepEqual(partitionsBehind({ t: [0, 1, 2] }, ends, none, true, new Map()), [
      { topic: 't', partition: 0, messages: 10 },
      { topic: 't', partition: 2, messages: 5 },
    ]);
    const baseline = new Map<string, bigint>();
    assert.deepEqual(partitionsBehind({ t: [0, 2] }, ends, none, false, baseline), []);
    const later = { t: [{ partition: 0, low: '0', high: '13' }, ends.t[2]!] };
    assert.deepEqual(partitionsBehind({ t: [0, 2] }, later, none, false, baseline), [
      { topic: 't', partition: 0, messages: 3 },
    ]);
  });
  test('a partition or topic the brokers did not answer for is not counted', () => {
    assert.deepEqual(partitionsBehind({ t: [5], u: [0] }, ends, {}, true, new Map()), []);
  });
});

test('kafkajs group joins of one member are shared while one is in flight; the next one is new', async () => {
  assert.equal(shareGroupJoins(), true);
  assert.equal(shareGroupJoins(), true, 'patched once, idempotent');
  const ConsumerGroup = createRequire(import.meta.url)('kafkajs/src/consumer/consumerGroup.js') as {
    prototype: { joinAndSync(this: object): Promise<void> };
  };
  let joins = 0;
  // kafkajs's joinAndSync is `this.retrier(join + sync)`: a stand-in retrier counts the joins.
  const member = {
    retrier: () => {
      joins++;
      return new Promise<void>((r) => setTimeout(r, 20));
    },
  };
  const join = () => ConsumerGroup.prototype.joinAndSync.call(member);
  const [a, b, c] = [join(), join(), join()];
  assert.equal(a, b);
  assert.equal(b, c);
  await Promise.all([a, b, c]);
  assert.equal(joins, 1);
  await join();
  assert.equal(joins, 2);
});
