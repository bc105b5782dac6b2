import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import { type MockKafka, mockClusterBinary, readTopic, startMockKafka } from './kafka.ts';

const producerFor = (brokers: string[], retries: number) =>
  new Kafka({
    brokers,
    clientId: 'testkit-test',
    logLevel: logLevel.NOTHING,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 500 },
  }).producer({ idempotent: false, maxInFlightRequests: 1, allowAutoTopicCreation: false });

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('librdkafka mock cluster', () => {
  let mock: MockKafka;
  before(async () => {
    mock = await startMockKafka({ brokers: 1, topics: [{ name: 'pre-created', partitions: 3 }] });
  });
  after(() => mock.stop());

  test('serves the Kafka protocol: a pre-created topic takes messages that a consumer reads back in order', async () => {
    const producer = producerFor(mock.brokers, 5);
    await producer.connect();
    try {
      for (let i = 0; i < 10; i++) {
        await producer.send({
          topic: 'pre-created',
          acks: -1,
          messages: [{ key: `user-${i % 2}`, value: `m${i}`, headers: { 'ce-id': `id-${i}` } }],
        });
      }
    } finally {
      await producer.disconnect();
    }
    const read = await readTopic(mock.brokers, 'pre-created', { count: 10 });
    assert.equal(read.length, 10);
    for (const key of ['user-0', 'user-1']) {
      const values = read.filter((m) => m.key === key).map((m) => m.value);
      const expected = Array.from({ length: 10 }, (_, i) => i)
        .filter((i) => `user-${i % 2}` === key)
        .map((i) => `m${i}`);
      assert.deepEqual(values, expected, `per-key order of ${key}`);
    }
    assert.equal(read.find((m) => m.value === 'm3')?.headers['ce-id'], 'id-3');
    // Same key, same partition: that is what keeps per-user order.
    assert.equal(new Set(read.filter((m) => m.key === 'user-0').map((m) => m.partition)).size, 1);
  });

  test('a broker that is down fails produce; once it is up again produce succeeds', async () => {
    await mock.createTopic('outage', 1);
    const warm = producerFor(mock.brokers, 5);
    await warm.connect();
    await warm.send({ topic: 'outage', acks: -1, messages: [{ key: 'k', value: 'before' }] });
    await warm.disconnect();

    await mock.brokerDown(1);
    const impatient = producerFor(mock.brokers, 1);
    await assert.rejects(async () => {
      await impatient.connect();
      await impatient.send({ topic: 'outage', acks: -1, messages: [{ key: 'k', value: 'lost' }] });
    });
    await impatient.disconnect().catch(() => {});

    // A patient producer started during the outage completes once the broker is back.
    const patient = producerFor(mock.brokers, 30);
    const sending = (async () => {
      await patient.connect();
      await patient.send({ topic: 'outage', acks: -1, messages: [{ key: 'k', value: 'after' }] });
    })();
    let settled = false;
    void sending.then(
      () => {
        settled = true;
      },
      () => {
        settled = true;
      },
    );
    await new Promise((r) => setTimeout(r, 700));
    assert.equal(settled, false, 'produce cannot complete while the only broker is down');
    await mock.brokerUp(1);
    await sending;
    await patient.disconnect();

    const read = await readTopic(mock.brokers, 'outage', { count: 2 });
    assert.deepEqual(
      read.map((m) => m.value),
      ['before', 'after'],
    );
  });

  test('pushed request errors make the next requests fail; a retrying producer still lands the message once', async () => {
    await mock.createTopic('flaky', 1);
    const NOT_LEADER_FOR_PARTITION = 6;
    await mock.pushRequestErrors(0, [NOT_LEADER_FOR_PARTITION, NOT_LEADER_FOR_PARTITION]);
    const noRetry = producerFor(mock.brokers, 0);
    await noRetry.connect();
    await assert.rejects(noRetry.send({ topic: 'flaky', acks: -1, messages: [{ key: 'k', value: 'x' }] }));
    await noRetry.disconnect();

    const producer = producerFor(mock.brokers, 5);
    await producer.connect();
    await producer.send({ topic: 'flaky', acks: -1, messages: [{ key: 'k', value: 'landed' }] });
    await producer.disconnect();
    const read = await readTopic(mock.brokers, 'flaky', { count: 1 });
    assert.deepEqual(
      read.map((m) => m.value),
      ['landed'],
    );
  });

  test('bad commands are refused with the reason', async () => {
    await assert.rejects(mock.brokerDown(7), /no mock broker 7/);
    await assert.rejects(mock.createTopic('bad name'), /invalid topic name/);
    await assert.rejects(mock.pushRequestErrors(0, []), /at least one error code/);
  });
});

test('the launcher exits cleanly when its stdin closes, and with the process that started it', async () => {
  const binary = mockClusterBinary();
  const direct = spawn(binary, ['1'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [firstChunk] = (await once(direct.stdout, 'data')) as [Buffer];
  assert.match(firstChunk.toString(), /^ready 127\.0\.0\.1:\d+/);
  direct.stdin.end();
  const [code] = await once(direct, 'exit');
  assert.equal(code, 0);

  // A test process killed outright must not leave a broker behind.
  const parent = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '-e',
      `import { startMockKafka } from ${JSON.stringify(new URL('./kafka.ts', import.meta.url).href)};
       const m = await startMockKafka(); console.log('pid', process.pid); setInterval(() => {}, 1000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await once(parent.stdout, 'data');
  const children = await new Promise<string>((resolve) => {
    const ps = spawn('pgrep', ['-P', String(parent.pid)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    ps.stdout.on('data', (d) => {
      out += d;
    });
    ps.on('exit', () => resolve(out));
  });
  const mockPid = Number(children.trim().split('\n')[0]);
  assert.ok(mockPid > 0 && isAlive(mockPid), 'the mock cluster runs as a child of the test process');
  parent.kill('SIGKILL');
  await once(parent, 'exit');
  for (let i = 0; i < 50 && isAlive(mockPid); i++) await new Promise((r) => setTimeout(r, 100));
  assert.equal(isAlive(mockPid), false, 'the mock cluster died with its parent');
});

describe('building the launcher', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sitemail-mock-build-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  test('test processes starting at once all get the same complete binary, compiled without leftovers', async () => {
    const cacheDir = freshDir();
    const moduleUrl = JSON.stringify(new URL('./kafka.ts', import.meta.url).href);
    const builders = Array.from({ length: 3 }, () => {
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          '-e',
          `import { mockClusterBinary } from ${moduleUrl};
           console.log(mockClusterBinary({ cacheDir: ${JSON.stringify(cacheDir)} }));`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      return once(child, 'exit').then(([code]) => ({ code, path: out.trim() }));
    });
    const results = await Promise.all(builders);
    assert.deepEqual(
      results.map((r) => r.code),
      [0, 0, 0],
    );
    assert.equal(new Set(results.map((r) => r.path)).size, 1);
    assert.deepEqual(readdirSync(cacheDir), [basename(results[0]!.path)], 'no temp files left behind');
    const run = spawn(results[0]!.path, ['1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const [chunk] = (await once(run.stdout, 'data')) as [Buffer];
    assert.match(chunk.toString(), /^ready /);
    run.stdin.end();
    assert.deepEqual(await once(run, 'exit'), [0, null]);
  });

  test('without librdkafka-dev the error says what to install', () => {
    const cacheDir = freshDir();
    // A compiler that fails the way cc does when the header is missing.
    const fakeCc = join(cacheDir, 'fake-cc');
    writeFileSync(
      fakeCc,
      '#!/bin/sh\necho "mock-cluster.c:27:10: fatal error: librdkafka/rdkafka_mock.h: No such file or directory" >&2\nexit 1\n',
      { mode: 0o755 },
    );
    assert.throws(
      () => mockClusterBinary({ cacheDir, cc: fakeCc }),
      (e: Error) => e.message === 'librdkafka-dev is not installed (apt-get install librdkafka-dev)',
    );
    assert.deepEqual(readdirSync(cacheDir), ['fake-cc'], 'nothing half-written');
    assert.throws(
      () => mockClusterBinary({ cacheDir, cc: join(cacheDir, 'no-such-cc') }),
      /no-such-cc.*ENOENT/,
    );
  });
});
