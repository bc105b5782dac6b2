import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type Database, notify, openDatabase, PGlite } from './index.ts';

const url = process.env.DATABASE_URL;
const kind = url ? 'postgres' : 'pglite';
// PGlite is one process's database: "another process" is another handle on the same instance.
const sharedPglite = url ? undefined : new PGlite();
const open = (schema: string, warn?: (m: string) => void): Promise<Database> =>
  url
    ? openDatabase({ url, schema, maxConnections: 2, ...(warn ? { warn } : {}) })
    : openDatabase({ pglite: sharedPglite as PGlite, schema });

/** Resolves at the listener's next call, failing after `ms`. */
function nextCall(calls: { waiters: Array<() => void> }, ms = 5_000, what = 'a notification') {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    calls.waiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
function recorder() {
  const calls = { count: 0, waiters: [] as Array<() => void> };
  const onNotify = () => {
    calls.count++;
    for (const w of calls.waiters.splice(0)) w();
  };
  return { calls, onNotify };
}

describe(`listen / notify (${kind})`, () => {
  const schema = `listen_${randomBytes(5).toString('hex')}`;
  let writer: Database;
  let reader: Database;
  const warnings: string[] = [];
  before(async () => {
    writer = await open(schema);
    reader = await open(schema, (m) => warnings.push(m));
  });
  after(async () => {
    await writer.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await reader.close();
    await writer.close();
    await sharedPglite?.close();
  });

  it('calls the listener once LISTEN is in effect, then on each commit that notified, from another handle', async () => {
    const { calls, onNotify } = recorder();
    const ready = nextCall(calls, 5_000, 'call when listening');
    const unlisten = reader.listen('work', onNotify);
    await ready;
    const before = calls.count;
    const woken = nextCall(calls);
    const committedAt = performance.now();
    await writer.transaction(async (tx) => {
      await tx.query('SELECT 1');
      await notify(tx, 'work');
    });
    await woken;
    const ms = performance.now() - committedAt;
    assert.equal(calls.count, before + 1);
    assert.ok(ms < 1_000, `woken ${ms.toFixed(1)} ms after the commit`);
    await unlisten();
  });

  it('sends nothing for a transaction that rolled back, nor for another schema or channel', async () => {
    const other = await open(`${schema}_other`);
    const { calls, onNotify } = recorder();
    const ready = nextCall(calls);
    const unlisten = reader.listen('work', onNotify);
    await ready;
    const before = calls.count;
    await writer
      .transaction(async (tx) => {
        await notify(tx, 'work');
        throw new Error('roll back');
      })
      .catch(() => {});
    await other.transaction((tx) => notify(tx, 'work'));
    await writer.transaction((tx) => notify(tx, 'other_work'));
    // A notification that does arrive proves the ones before it were not sent: delivery is in order.
    const woken = nextCall(calls);
    await writer.transaction((tx) => notify(tx, 'work'));
    await woken;
    assert.equal(calls.count, before + 1);
    await unlisten();
    await other.query(`DROP SCHEMA IF EXISTS ${schema}_other CASCADE`);
    await other.close();
  });

  it('stops calling after unlisten', async () => {
    const { calls, onNotify } = recorder();
    const ready = nextCall(calls);
    const unlisten = reader.listen('work', onNotify);
    await ready;
    await unlisten();
    const still = recorder();
    const stillReady = nextCall(still.calls);
    const keep = reader.listen('work', still.onNotify);
    await stillReady;
    const count = calls.count;
    const woken = nextCall(still.calls);
    await writer.transaction((tx) => notify(tx, 'work'));
    await woken;
    assert.equal(calls.count, count);
    await keep();
  });

  if (url) {
    it('reconnects after its connection is terminated, calls the listener then, and hears later commits', async () => {
      const { calls, onNotify } = recorder();
      const ready = nextCall(calls);
      const unlisten = reader.listen('work', onNotify);
      await ready;
      const reconnected = nextCall(calls, 10_000, 'call after the reconnect');
      const killed = await writer.query<{ n: number }>(
        `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE application_name = $1`,
        [`sitemail listen ${schema}`],
      );
      assert.equal(killed.rows[0]?.n, 1);
      await reconnected;
      assert.ok(
        warnings.some((w) => /LISTEN connection lost/.test(w)),
        `warned: ${JSON.stringify(warnings)}`,
      );
      const woken = nextCall(calls);
      await writer.transaction((tx) => notify(tx, 'work'));
      await woken;
      await unlisten();
    });

    it('holds no LISTEN connection once closed', async () => {
      const db = await open(`${schema}_closing`);
      const { calls, onNotify } = recorder();
      const ready = nextCall(calls);
      db.listen('work', onNotify);
      await ready;
      await db.query(`DROP SCHEMA ${schema}_closing`);
      await db.close();
      const left = await writer.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1',
        [`sitemail listen ${schema}_closing`],
      );
      assert.equal(left.rows[0]?.n, 0);
    });
  }
});
