import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { busBehaviourSuite } from './behaviour-suite.ts';
import { inProcessBus } from './in-process.ts';
import type { Bus, BusMessage } from './types.ts';

let dataDir = '';
busBehaviourSuite('in-process, persisted to a data dir', {
  async setup() {
    dataDir = mkdtempSync(join(tmpdir(), 'sitemail-bus-'));
  },
  async teardown() {
    rmSync(dataDir, { recursive: true, force: true });
  },
  openBus: () => inProcessBus({ dataDir }),
  async createTopic() {},
});

describe('in-process bus specifics', () => {
  const dirs: string[] = [];
  const freshDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'sitemail-bus-'));
    dirs.push(dir);
    return dir;
  };
  after(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Collects the string values a fresh group reads from the beginning, until `count` arrived. */
  const readAll = async (bus: Bus, topic: string, count: number, groupId = `reader-${Math.random()}`) => {
    const values: string[] = [];
    const consumer = bus.consumer<string>({
      groupId,
      topics: [topic],
      fromBeginning: true,
      deadLetterTopic: `${topic}.dlq`,
      decode: (m) => m.value?.toString() ?? '',
      handleBatch: async (batch) => {
        values.push(...batch.map((d) => d.value));
      },
    });
    await consumer.start();
    while (values.length < count) await new Promise((r) => setTimeout(r, 5));
    await consumer.stop();
    return values;
  };

  test('without a data dir everything lives in memory and a new bus starts empty', async () => {
    const bus = inProcessBus();
    const publisher = await bus.publisher();
    await publisher.publish('mem', [
      { key: 'a', value: '1' },
      { key: 'a', value: '2' },
    ]);
    assert.deepEqual(await readAll(bus, 'mem', 2), ['1', '2']);
    await bus.close();
    const other = inProcessBus();
    const consumer = other.consumer<string>({
      groupId: 'g',
      topics: ['mem'],
      fromBeginning: true,
      deadLetterTopic: 'mem.dlq',
      decode: (m) => String(m.value),
      handleBatch: async () => assert.fail('a fresh in-memory bus has no messages'),
    });
    await consumer.start();
    await consumer.stop();
    await other.close();
  });

  test('messages, keys, headers and timestamps survive a restart; a write torn by a crash is dropped', async () => {
    const dataDir = freshDir();
    let bus = inProcessBus({ dataDir, now: () => 1_700_000_000_000 });
    let publisher = await bus.publisher();
    await publisher.publish('persisted', [
      { key: 'user-1', value: Buffer.from([0, 1, 2, 255]), headers: { 'ce-id': 'e1' } },
      { key: 'user-2', value: 'two' },
    ]);
    await bus.close();
    // A crash in the middle of an append leaves a line without its newline.
    appendFileSync(join(dataDir, 'topics', 'persisted.jsonl'), '{"o":2,"k":"user-3","v":"dGhy');

    bus = inProcessBus({ dataDir });
    const seen: BusMessage[] = [];
    const consumer = bus.consumer<BusMessage>({
      groupId: 'g',
      topics: ['persisted'],
      fromBeginning: true,
      deadLetterTopic: 'persisted.dlq',
      decode: (m) => m,
      handleBatch: async (batch) => {
        seen.push(...batch.map((d) => d.value));
      },
    });
    await consumer.start();
    publisher = await bus.publisher();
    await publisher.publish('persisted', [{ key: 'user-3', value: 'three' }]);
    while (seen.length < 3) await new Promise((r) => setTimeout(r, 5));
    await consumer.stop();
    await bus.close();
    assert.deepEqual(
      seen.map((m) => [m.offset, m.key, m.value?.toString('hex'), m.headers, m.timestamp]),
      [
        ['0', 'user-1', '000102ff', { 'ce-id': 'e1' }, 1_700_000_000_000],
        ['1', 'user-2', Buffer.from('two').toString('hex'), {}, 1_700_000_000_000],
        ['2', 'user-3', Buffer.from('three').toString('hex'), {}, seen[2]!.timestamp],
      ],
    );
    const lines = readFileSync(join(dataDir, 'topics', 'persisted.jsonl'), 'utf8')
      .trim()
      .split('\n');
    assert.equal(lines.length, 3, 'the torn line is gone, the new message took its offset');
  });

  test('a corrupt line in the middle of a log stops the start with the file and line named', async () => {
    const dataDir = freshDir();
    mkdirSync(join(dataDir, 'topics'), { recursive: true });
    writeFileSync(join(dataDir, 'topics', 'broken.jsonl'), '{"o":0,"k":"a","v":"","h":{},"t":0}\nnot json\n');
    assert.throws(() => inProcessBus({ dataDir }), /broken\.jsonl line 2 is not valid JSON/);
    // The failed start released the data dir.
    rmSync(join(dataDir, 'topics', 'broken.jsonl'));
    await inProcessBus({ dataDir }).close();
  });

  test('one bus per data dir: a second is refused while the first is open; a dead owner is taken over', async () => {
    const dataDir = freshDir();
    const first = inProcessBus({ dataDir });
    assert.throws(() => inProcessBus({ dataDir }), /is in use by process/);
    await first.close();
    await inProcessBus({ dataDir }).close();

    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(join(dataDir, 'bus.lock'), dead.stdout.trim());
    await inProcessBus({ dataDir }).close();
  });

  test('committed offsets are compacted to one line per group and topic at start', async () => {
    const dataDir = freshDir();
    let bus = inProcessBus({ dataDir });
    const publisher = await bus.publisher();
    for (let i = 0; i < 5; i++) {
      await publisher.publish('compact', [{ key: 'k', value: String(i) }]);
      // The group resumes after its commit: each round it gets just the new message.
      assert.deepEqual(await readAll(bus, 'compact', 1, 'same-group-each-time'), [String(i)]);
    }
    await bus.close();
    bus = inProcessBus({ dataDir });
    await bus.close();
    const lines = readFileSync(join(dataDir, 'offsets.jsonl'), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1);
    assert.deepEqual(JSON.parse(lines[0]!), { g: 'same-group-each-time', t: 'compact', p: 0, o: 5 });
  });

  test('two consumers of one group: the second takes over when the first stops, nothing handled twice', async () => {
    const bus = inProcessBus();
    const publisher = await bus.publisher();
    const handledBy: Array<[string, string]> = [];
    const member = (name: string) =>
      bus.consumer<string>({
        groupId: 'notifications',
        topics: ['shared'],
        fromBeginning: true,
        deadLetterTopic: 'shared.dlq',
        decode: (m) => String(m.value),
        handleBatch: async (batch) => {
          for (const d of batch) handledBy.push([name, d.value]);
        },
      });
    const a = member('a');
    const b = member('b');
    await a.start();
    await b.start();
    await publisher.publish('shared', [{ key: 'k', value: '1' }]);
    while (handledBy.length < 1) await new Promise((r) => setTimeout(r, 5));
    await a.stop();
    await publisher.publish('shared', [{ key: 'k', value: '2' }]);
    while (handledBy.length < 2) await new Promise((r) => setTimeout(r, 5));
    await b.stop();
    await bus.close();
    assert.deepEqual(handledBy, [
      ['a', '1'],
      ['b', '2'],
    ]);
  });

  test('without fromBeginning a new group starts at the end of the log', async () => {
    const bus = inProcessBus();
    const publisher = await bus.publisher();
    await publisher.publish('latest', [{ key: 'k', value: 'old' }]);
    const values: string[] = [];
    const consumer = bus.consumer<string>({
      groupId: 'late',
      topics: ['latest'],
      deadLetterTopic: 'latest.dlq',
      decode: (m) => String(m.value),
      handleBatch: async (batch) => {
        values.push(...batch.map((d) => d.value));
      },
    });
    await consumer.start();
    await publisher.publish('latest', [{ key: 'k', value: 'new' }]);
    while (values.length < 1) await new Promise((r) => setTimeout(r, 5));
    await consumer.stop();
    await bus.close();
    assert.deepEqual(values, ['new']);
  });
});
