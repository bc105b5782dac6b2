import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import {
  createEventStore,
  type EventStore,
  prepareEventStore,
  type StoredEvent,
} from '@sitemail/event-store';
import { type TestDatabase, testDatabase } from '@sitemail/testkit';
import { createCommandRunner, type RunCommand } from './command-runner.ts';

// A decider of the smallest kind, so that only the runner is under test: a tally that refuses
// to go past its limit and does nothing when asked to add zero.
interface Add {
  type: 'Add';
  amount: number;
  now: Date;
}
type Added = { type: 'Added'; data: { amount: number } };
const LIMIT = 3;
const tally = {
  decide: (command: Add, total: number): Added[] | { refusal: string } =>
    total + command.amount > LIMIT
      ? { refusal: `over the limit at ${total}` }
      : command.amount === 0
        ? []
        : [{ type: 'Added', data: { amount: command.amount } }],
  evolve: (total: number, event: Added) => total + event.data.amount,
  initialState: () => 0,
};

class Refused extends Error {}
class Stale extends Error {}
class Concurrent extends Error {}

const add = (amount: number, now = new Date('2026-11-25T10:00:00.000Z')): Add => ({
  type: 'Add',
  amount,
  now,
});

describe('the command runner', () => {
  let db: TestDatabase;
  let store: EventStore;
  let projected: StoredEvent[][];
  let run: RunCommand<Add>;
  const runner = (maxAttempts?: number) =>
    createCommandRunner({
      db,
      eventStore: store,
      decider: tally,
      fromStored: (e) => e as unknown as Added,
      project: async (_tx, events) => {
        projected.push(events);
      },
      errors: {
        refused: (r) => new Refused(r.refusal),
        staleVersion: (actual, expected) => new Stale(`at ${actual}, not ${expected}`),
        changedConcurrently: () => new Concurrent('changed concurrently'),
      },
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    });

  before(async () => {
    db = await testDatabase('command_runner');
    await prepareEventStore(db);
    store = createEventStore(db);
    run = runner();
  });
  after(async () => {
    await db.close();
  });

  /** Appends one event to the stream behind the runner's back, as a concurrent command would. */
  const concurrently = async (stream: string) => {
    const version = (await store.readStream(stream)).length;
    await store.append(stream, version, [{ type: 'Added', data: { amount: 1 } }]);
  };

  it('folds the stream, decides, appends at the command time and projects the new events', async () => {
    const stream = randomUUID();
    projected = [];
    await run(stream, () => add(1));
    const now = new Date('2026-11-25T11:00:00.000Z');
    const events = await run(stream, () => add(2, now));
    assert.deepEqual(
      events.map((e) => [e.position, e.type, e.data, e.time]),
      [[2, 'Added', { amount: 2 }, now.toISOString()]],
    );
    assert.deepEqual(projected.at(-1), events);
    await assert.rejects(
      run(stream, () => add(1)),
      new Refused('over the limit at 3'),
    );
  });

  it('a refusal writes nothing', async () => {
    const stream = randomUUID();
    projected = [];
    await assert.rejects(
      run(stream, () => add(LIMIT + 1)),
      Refused,
    );
    assert.deepEqual(await store.readStream(stream), []);
    assert.deepEqual(projected, []);
  });

  it('decides again on the new state when another command won the race', async () => {
    const stream = randomUUID();
    let attempts = 0;
    const events = await run(stream, async () => {
      attempts += 1;
      if (attempts === 1) await concurrently(stream);
      return add(2);
    });
    assert.equal(attempts, 2);
    assert.deepEqual(
      (await store.readStream(stream)).map((e) => e.data),
      [{ amount: 1 }, { amount: 2 }],
    );
    assert.equal(events[0]?.position, 2);
    // On the new state the same command can be refused: the race is decided, not overwritten.
    const late = randomUUID();
    await concurrently(late);
    let first = true;
    await assert.rejects(
      run(late, async () => {
        if (first) await concurrently(late);
        first = false;
        return add(2);
      }),
      new Refused('over the limit at 2'),
    );
  });

  it('gives up after the last attempt with the concurrent-change error', async () => {
    const stream = randomUUID();
    let attempts = 0;
    await assert.rejects(
      runner(3)(stream, async () => {
        attempts += 1;
        await concurrently(stream);
        return add(0.5);
      }),
      Concurrent,
    );
    assert.equal(attempts, 3);
  });

  it('with an expected version: a different one is stale before deciding, a lost race is not retried', async () => {
    const stream = randomUUID();
    await run(stream, () => add(1));
    let decided = false;
    await assert.rejects(
      run(
        stream,
        () => {
          decided = true;
          return add(1);
        },
        { expectedVersion: 0 },
      ),
      new Stale('at 1, not 0'),
    );
    assert.equal(decided, false);
    let attempts = 0;
    await assert.rejects(
      run(
        stream,
        async () => {
          attempts += 1;
          await concurrently(stream);
          return add(1);
        },
        { expectedVersion: 1 },
      ),
      Concurrent,
    );
    assert.equal(attempts, 1);
    const events = await run(stream, () => add(1), { expectedVersion: 2 });
    assert.equal(events[0]?.position, 3);
  });

  it('more writes share the append transaction: when they fail, no event is appended', async () => {
    const stream = randomUUID();
    await assert.rejects(
      run(stream, () => add(1), {
        alsoWrite: async () => {
          throw new Error('side table refused');
        },
      }),
      /side table refused/,
    );
    assert.deepEqual(await store.readStream(stream), []);
  });

  it('a decision of no events writes the more writes only when asked to', async () => {
    const stream = randomUUID();
    const writes: StoredEvent[][] = [];
    const alsoWrite = async (_tx: unknown, events: StoredEvent[]) => {
      writes.push(events);
    };
    assert.deepEqual(await run(stream, () => add(0), { alsoWrite }), []);
    assert.deepEqual(writes, []);
    assert.deepEqual(await run(stream, () => add(0), { alsoWrite, writeWhenNoEvents: true }), []);
    assert.deepEqual(writes, [[]]);
    assert.deepEqual(await store.readStream(stream), []);
  });
});
