import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { openDatabase } from '@sitemail/db';
import { type TestDatabase, testDatabase } from './db.ts';

export interface DatabaseOutage {
  /** The database the app under test is given; it loses its database on `down()`. */
  db: TestDatabase;
  /** What `down()` does, for test names and messages. */
  how: string;
  /** The database stops answering the handle (resolves once it does not). */
  down(): Promise<void>;
  /** It answers again. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A test database that can be taken away from the code under test, for readiness tests.
 *
 * On Postgres (DATABASE_URL) the handle connects through a TCP relay in this process: `down()`
 * closes the relay and every connection through it, so the handle's pool sees its connections
 * drop and new ones refused, as when the server goes away; `up()` listens again on the same port.
 * On PGlite (one connection per process, nothing to cut) `down()` holds its one connection in
 * an open transaction, so every statement of the handle waits: the database does not answer.
 */
export async function databaseWithOutage(label = 'outage'): Promise<DatabaseOutage> {
  const url = process.env.DATABASE_URL;
  if (!url) return pgliteOutage(await testDatabase(label));
  const target = new URL(url);
  const sockets = new Set<Socket>();
  const relay: Server = createServer((client) => {
    const server = netConnect(Number(target.port || 5432), target.hostname);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(server).pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
  const port = (relay.address() as { port: number }).port;
  const through = new URL(url);
  through.hostname = '127.0.0.1';
  through.port = String(port);
  const schema = `${label.replace(/[^a-z0-9_]/g, '_').slice(0, 40)}_${randomBytes(5).toString('hex')}`;
  const handle = await openDatabase({ url: through.toString(), schema, maxConnections: 4 });
  const db: TestDatabase = {
    ...handle,
    async close() {
      const direct = await openDatabase({ url, schema, maxConnections: 1 });
      await direct.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await direct.close();
      await handle.close().catch(() => {});
    },
  };
  let listening = true;
  const outage: DatabaseOutage = {
    db,
    how: 'its Postgres connections cut and refused',
    async down() {
      if (!listening) return;
      listening = false;
      const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async up() {
      if (listening) return;
      await new Promise<void>((resolve, reject) => {
        relay.once('error', reject);
        relay.listen(port, '127.0.0.1', () => {
          relay.off('error', reject);
          resolve();
        });
      });
      listening = true;
    },
    async close() {
      await outage.up();
      await db.close();
      // The handle closed its own connections; any left (a client the code under test still holds)
      // is not cut here, where nothing would handle its error, only kept from holding the process.
      relay.close();
      for (const s of sockets) s.unref();
    },
  };
  return outage;
}

function pgliteOutage(db: TestDatabase): DatabaseOutage {
  let held: { release: () => void; done: Promise<unknown> } | undefined;
  const outage: DatabaseOutage = {
    db,
    how: 'its PGlite connection held by another transaction',
    async down() {
      if (held) return;
      let release = () => {};
      let started = () => {};
      const inside = new Promise<void>((r) => {
        started = r;
      });
      const done = db.transaction(async () => {
        started();
        await new Promise<void>((r) => {
          release = r;
        });
      });
      await inside;
      held = { release: () => release(), done };
    },
    async up() {
      if (!held) return;
      held.release();
      await held.done;
      held = undefined;
    },
    async close() {
      await outage.up();
      await db.close();
    },
  };
  return outage;
}
