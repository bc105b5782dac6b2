import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Database, openDatabase } from './index.ts';

const url = process.env.DATABASE_URL;
const kind = url ? 'postgres' : 'pglite';

/**
 * A database that goes away (a Postgres restart terminates every backend) must fail the
 * statements of the moment, never the process: the service retries them and carries on once the
 * server is back. Postgres's own restart is what the chaos suite does; here one backend at a time
 * is terminated, which sends the client the same FATAL the shutdown sends.
 */
describe(`connection loss (${kind})`, () => {
  const schema = `conn_loss_${randomBytes(5).toString('hex')}`;
  let db: Database;
  let admin: Database | undefined;
  const warnings: string[] = [];
  before(async () => {
    db = await openDatabase({ url, schema, maxConnections: 2, warn: (m) => warnings.push(m) });
    if (url) admin = await openDatabase({ url, maxConnections: 1 });
    await db.query('CREATE TABLE things (name text PRIMARY KEY)');
  });
  after(async () => {
    await db.query(`DROP SCHEMA ${schema} CASCADE`);
    await db.close();
    await admin?.close();
  });

  it('rolls back a transaction whose statement failed and keeps the handle usable', async () => {
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO things (name) VALUES ($1)', ['a']);
        await tx.query('INSERT INTO things (name) VALUES ($1)', ['a']);
      }),
      /duplicate key/,
    );
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM things');
    assert.equal(rows[0]?.n, 0);
  });

  if (url) {
    const terminate = async (pid: number) => {
      const { rows } = await (admin as Database).query<{ ok: boolean }>(
        'SELECT pg_terminate_backend($1) AS ok',
        [pid],
      );
      assert.equal(rows[0]?.ok, true);
    };
    const pidOf = async (q: { query: Database['query'] }) =>
      (await q.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number;

    it('fails a transaction whose connection is terminated between its statements, without ending the process', async () => {
      // Outside a test runner an unhandled client 'error' ends the process; here it would only surface
      // as an uncaught exception, so the test listens for one.
      const uncaught: Error[] = [];
      const onUncaught = (err: Error) => uncaught.push(err);
      process.on('uncaughtException', onUncaught);
      try {
        await assert.rejects(
          db.transaction(async (tx) => {
            await tx.query('INSERT INTO things (name) VALUES ($1)', ['lost']);
            await terminate(await pidOf(tx));
            // The FATAL arrives while no statement runs: the moment the pool does not listen.
            await new Promise((r) => setTimeout(r, 200));
            await tx.query('INSERT INTO things (name) VALUES ($1)', ['after']);
          }),
          /not queryable|terminating connection|Connection terminated/,
        );
        // The broken connection was discarded: the next transactions get working ones.
        for (const name of ['b', 'c', 'd'])
          await db.transaction((tx) => tx.query('INSERT INTO things (name) VALUES ($1)', [name]));
        const { rows } = await db.query<{ name: string }>('SELECT name FROM things ORDER BY name');
        assert.deepEqual(
          rows.map((r) => r.name),
          ['b', 'c', 'd'],
        );
      } finally {
        process.off('uncaughtException', onUncaught);
      }
      assert.deepEqual(
        uncaught.map((e) => e.message),
        [],
      );
    });

    it('replaces an idle pooled connection that was terminated, and says so', async () => {
      const pid = await pidOf(db);
      await terminate(pid);
      const deadline = Date.now() + 5_000;
      while (!warnings.some((w) => /idle connection was lost/.test(w)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.ok(
        warnings.some((w) => w.includes(schema) && /idle connection was lost/.test(w)),
        JSON.stringify(warnings),
      );
      assert.notEqual(await pidOf(db), pid);
    });
  }
});
