import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Database } from '@sitemail/db';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import {
  createEventStore,
  DuplicateEventIdError,
  type EventStore,
  InvalidAppendError,
  prepareEventStore,
  StreamVersionConflictError,
} from './index.ts';

describe(`event store (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let store: EventStore;
  before(async () => {
    db = await testDatabase('store');
    await prepareEventStore(db);
    await prepareEventStore(db); // a second start applies nothing and does not fail
    store = createEventStore(db);
  });
  after(async () => {
    await db.close();
  });

  const count = async (sql: string, params: unknown[] = []) =>
    Number((await db.query<{ n: string }>(sql, params)).rows[0]?.n);

  it('appends with positions from the expected version and reads the stream back in order', async () => {
    const stream = randomUUID();
    const now = new Date('2026-01-02T03:04:05.678Z');
    const first = await store.append(stream, 0, [{ type: 'UserCreated', data: { email: 'a@example.com' } }], {
      now,
    });
    assert.equal(first.length, 1);
    assert.equal(first[0]?.position, 1);
    assert.equal(first[0]?.time, '2026-01-02T03:04:05.678Z');
    assert.equal(first[0]?.schemaVersion, 1);
    assert.match(first[0]?.id ?? '', /^[0-9a-f-]{36}$/);
    const id = randomUUID();
    const more = await store.append(stream, 1, [
      { type: 'EmailAdded', data: { email: 'b@example.com' }, id },
      { type: 'EmailVerified', data: { email: 'b@example.com', tags: ['x', 1] } },
    ]);
    assert.deepEqual(
      more.map((e) => [e.position, e.type]),
      [
        [2, 'EmailAdded'],
        [3, 'EmailVerified'],
      ],
    );
    assert.equal(more[0]?.id, id);
    const read = await store.readStream(stream);
    assert.deepEqual(read, [...first, ...more]);
    assert.deepEqual(
      (await store.readStream(stream, { afterPosition: 2 })).map((e) => e.position),
      [3],
    );
    assert.deepEqual(await store.readStream(randomUUID()), []);
    assert.equal(await count('SELECT version AS n FROM streams WHERE stream_id = $1', [stream]), 3);
  });

  it('rejects a stale expected version with a conflict and writes nothing', async () => {
    const stream = randomUUID();
    await store.append(stream, 0, [{ type: 'A', data: 1 }]);
    await store.append(stream, 1, [{ type: 'B', data: 2 }]);
    for (const expected of [0, 1, 3]) {
      const err = await store.append(stream, expected, [{ type: 'Stale', data: null }]).then(
        () => assert.fail('should conflict'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof StreamVersionConflictError);
      assert.equal(err.expectedVersion, expected);
      assert.equal(err.actualVersion, 2);
      assert.equal(err.streamId, stream);
    }
    const unknown = randomUUID();
    await assert.rejects(store.append(unknown, 4, [{ type: 'A', data: 1 }]), (e: unknown) => {
      assert.ok(e instanceof StreamVersionConflictError);
      assert.equal(e.actualVersion, 0);
      return true;
    });
    assert.deepEqual(
      (await store.readStream(stream)).map((e) => e.type),
      ['A', 'B'],
    );
    assert.equal(await count("SELECT count(*) AS n FROM events WHERE type = 'Stale'"), 0);
    assert.equal(await count('SELECT count(*) AS n FROM streams WHERE stream_id = $1', [unknown]), 0);
  });

  it('lets exactly one of two appends with the same expected version win', async () => {
    const stream = randomUUID();
    await store.append(stream, 0, [{ type: 'A', data: 0 }]);
    const results = await Promise.allSettled(
      Array.from({ length: 6 }, (_, i) => store.append(stream, 1, [{ type: `Racer${i}`, data: i }])),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 5);
    for (const r of lost)
      assert.ok((r as PromiseRejectedResult).reason instanceof StreamVersionConflictError);
    assert.deepEqual(
      (await store.readStream(stream)).map((e) => e.position),
      [1, 2],
    );
  });

  it('runs the projection in the same transaction: a failing projection leaves no event', async () => {
    await db.query('CREATE TABLE user_emails (stream_id text PRIMARY KEY, email text NOT NULL)');
    const stream = randomUUID();
    await store.append(stream, 0, [{ type: 'UserCreated', data: { email: 'p@example.com' } }], {
      async project(tx, events) {
        // The events are already visible inside the transaction.
        const seen = await tx.query<{ n: string }>('SELECT count(*) AS n FROM events WHERE stream_id = $1', [
          stream,
        ]);
        assert.equal(Number(seen.rows[0]?.n), 1);
        const data = events[0]?.data as { email: string };
        await tx.query('INSERT INTO user_emails VALUES ($1, $2)', [stream, data.email]);
      },
    });
    await assert.rejects(
      store.append(stream, 1, [{ type: 'EmailChanged', data: { email: 'q@example.com' } }], {
        async project(tx) {
          await tx.query('UPDATE user_emails SET email = $2 WHERE stream_id = $1', [stream, 'q@example.com']);
          throw new Error('projection refused');
        },
      }),
      /projection refused/,
    );
    assert.equal((await store.readStream(stream)).length, 1);
    assert.equal(await count('SELECT version AS n FROM streams WHERE stream_id = $1', [stream]), 1);
    const email = await db.query<{ email: string }>('SELECT email FROM user_emails WHERE stream_id = $1', [
      stream,
    ]);
    assert.equal(email.rows[0]?.email, 'p@example.com');
  });

  it('rejects bad input naming the field, before writing anything', async () => {
    const stream = randomUUID();
    const cases: Array<[() => Promise<unknown>, string]> = [
      [() => store.append('', 0, [{ type: 'A', data: 1 }]), 'streamId'],
      [() => store.append(stream, -1, [{ type: 'A', data: 1 }]), 'expectedVersion'],
      [() => store.append(stream, 1.5, [{ type: 'A', data: 1 }]), 'expectedVersion'],
      [
        () =>
          store.append(stream, 0, [
            { type: 'A', data: 1 },
            { type: '', data: 1 },
          ]),
        'events[1].type',
      ],
      [() => store.append(stream, 0, [{ type: 'A', data: undefined }]), 'events[0].data'],
      [() => store.append(stream, 0, [{ type: 'A', data: 1, id: 'not-a-uuid' }]), 'events[0].id'],
      [() => store.append(stream, 0, [{ type: 'A', data: 1 }], { now: new Date('nope') }), 'options.now'],
      [
        () => store.append(stream, 0, [{ type: 'A', data: 1 }], { schemaVersion: 0 }),
        'options.schemaVersion',
      ],
      [
        () =>
          store.append(
            stream,
            0,
            Array.from({ length: 5001 }, () => ({ type: 'A', data: 1 })),
          ),
        'events',
      ],
    ];
    for (const [call, field] of cases) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof InvalidAppendError, String(e));
        assert.equal(e.field, field);
        assert.ok(e.message.startsWith(field));
        return true;
      });
    }
    const id = randomUUID();
    await assert.rejects(
      store.append(stream, 0, [
        { type: 'A', data: 1, id },
        { type: 'B', data: 2, id },
      ]),
      (e: unknown) => e instanceof InvalidAppendError && e.field === 'events[1].id',
    );
    assert.equal(await count('SELECT count(*) AS n FROM streams WHERE stream_id = $1', [stream]), 0);
    assert.deepEqual(await store.append(stream, 0, []), []);
    assert.equal(await count('SELECT count(*) AS n FROM streams WHERE stream_id = $1', [stream]), 0);
  });

  it('refuses an event id that is already stored, writing nothing', async () => {
    const id = randomUUID();
    const a = randomUUID();
    const b = randomUUID();
    await store.append(a, 0, [{ type: 'A', data: 1, id }]);
    await assert.rejects(
      store.append(b, 0, [{ type: 'B', data: 1, id: id.toUpperCase() }]),
      DuplicateEventIdError,
    );
    assert.deepEqual(await store.readStream(b), []);
    assert.equal(await count('SELECT count(*) AS n FROM streams WHERE stream_id = $1', [b]), 0);
  });

  it('stamps each row with its transaction id, later transactions higher', async () => {
    const stream = randomUUID();
    await store.append(stream, 0, [
      { type: 'A', data: 1 },
      { type: 'B', data: 2 },
    ]);
    await store.append(stream, 2, [{ type: 'C', data: 3 }]);
    const rows = (
      await db.query<{ xid: string; position: number }>(
        'SELECT xid::text AS xid, position FROM events WHERE stream_id = $1 ORDER BY position',
        [stream],
      )
    ).rows;
    assert.equal(rows[0]?.xid, rows[1]?.xid);
    assert.ok(BigInt(rows[2]?.xid ?? 0) > BigInt(rows[1]?.xid ?? 0));
  });

  // Needs a second connection (A commits while B's transaction is open): Postgres only, PGlite has one.
  if (testDatabaseKind() === 'postgres') {
    it('refuses to commit a later position with a lower transaction id than the one before it', async () => {
      const stream = randomUUID();
      await store.append(stream, 0, [{ type: 'A', data: 0 }]);
      const err = await db
        .transaction(async (outer) => {
          // B takes its transaction id first...
          await outer.query('SELECT pg_current_xact_id()');
          // ...A (another connection, a higher id) appends position 2 and commits...
          await store.append(stream, 1, [{ type: 'A2', data: 1 }]);
          // ...then B appends position 3 inside its transaction (savepoints stand in for transactions).
          let n = 0;
          const inB: Database = {
            ...db,
            query: outer.query,
            async transaction(fn) {
              const savepoint = `b${n++}`;
              await outer.query(`SAVEPOINT ${savepoint}`);
              try {
                const result = await fn(outer);
                await outer.query(`RELEASE SAVEPOINT ${savepoint}`);
                return result;
              } catch (e) {
                await outer.query(`ROLLBACK TO SAVEPOINT ${savepoint}`);
                throw e;
              }
            },
          };
          return createEventStore(inB).append(stream, 2, [{ type: 'B3', data: 2 }]);
        })
        .then(
          () => assert.fail('should be refused'),
          (e: unknown) => e,
        );
      assert.match(String(err), /overtook/);
      assert.deepEqual(
        (await store.readStream(stream)).map((e) => e.type),
        ['A', 'A2'],
      );
    });
  }
});
