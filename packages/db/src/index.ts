import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { acquirePglite, legacyPgliteDir } from './embedded.ts';
import { channelName, PostgresListener, type Unlisten } from './listen.ts';

export { DataDirInUseError } from './embedded.ts';
export { channelName, notify, type Unlisten } from './listen.ts';

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

/** Something SQL can run on: the database itself, or one transaction. Parameters are $1, $2, ... */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** The schema every statement runs in (search_path). */
  readonly schema: string;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Calls `onNotify` after each commit, by any process, of a transaction that ran
   * `notify(tx, channel)` in this schema, and once each time the LISTEN takes effect (at first, and
   * after a lost connection came back: what was notified meanwhile is lost, so read then). Calls
   * may be merged; a notification says "look", never what. Postgres: one dedicated connection per
   * handle, reconnecting by itself. PGlite: its own in-process LISTEN.
   */
  listen(channel: string, onNotify: () => void): Unlisten;
  /** Releases the connections, LISTEN included (and the PGlite instance after its last handle). */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Postgres connection string. When absent, an embedded PGlite is used. */
  url?: string | undefined;
  /**
   * PGlite data directory (absent: in memory). Ignored with `url`. Handles of one process on the
   * same directory share one PGlite (a schema each); another process holding it is refused.
   */
  dataDir?: string | undefined;
  /**
   * Where an older version kept this schema's embedded database (its own PGlite, tables in
   * `public`): when that directory holds a database it is used instead of `dataDir`, so an upgrade
   * loses nothing, and `warn` says how to move to the shared one.
   */
  legacyDataDir?: string | undefined;
  /** Reports conditions worth a warning (a lost LISTEN connection, an old data layout). */
  warn?: (message: string) => void;
  /** Schema to create and run in; default `public`. */
  schema?: string;
  /** Pool size for Postgres. */
  maxConnections?: number;
  /** Share an already running PGlite (tests share one per process and isolate by schema). */
  pglite?: PGlite;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export class DatabaseConfigError extends Error {}

/** Resolves when the database answers a trivial statement (a readiness check); rejects otherwise. */
export async function pingDatabase(db: Queryable): Promise<void> {
  await db.query('SELECT 1');
}

export async function openDatabase(options: OpenDatabaseOptions = {}): Promise<Database> {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new DatabaseConfigError(`invalid schema name "${schema}"`);
  const warn = options.warn ?? ((m: string) => process.emitWarning(m));
  if (options.url) return openPostgres(options.url, schema, options.maxConnections ?? 10, warn);
  const legacy = options.pglite ? undefined : legacyPgliteDir(options.legacyDataDir);
  if (legacy) {
    warn(
      `using the embedded database of an older version in ${legacy} (schema public); this version ` +
        `keeps every service's schema in one PGlite in ${options.dataDir ?? 'memory'}, which needs about ` +
        `half the memory. To switch, stop sitemail and delete ${legacy} (its data is not carried over).`,
    );
    return openPglite({ dataDir: legacy }, 'public');
  }
  return openPglite(options, schema);
}

async function openPostgres(
  url: string,
  schema: string,
  max: number,
  warn: (message: string) => void,
): Promise<Database> {
  // search_path is set per connection at startup, so every pooled connection runs in the schema.
  const pool = new pg.Pool({ connectionString: url, max, options: `-c search_path=${schema}` });
  pool.on('error', (err) => {
    // An idle client lost its connection (the server restarted): the pool drops it and opens a
    // new one for the next query, which fails on its own while the server is away.
    warn(`database ${schema}: an idle connection was lost (${err.message})`);
  });
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const query = async <T>(client: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]) => {
    const res = await client.query(sql, params as unknown[]);
    return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
  };
  // Opened on the first listen: a handle nobody listens on holds no extra connection.
  let listener: PostgresListener | undefined;
  return {
    kind: 'postgres',
    schema,
    query: (sql, params) => query(pool, sql, params),
    listen(channel, onNotify) {
      listener ??= new PostgresListener(url, `sitemail listen ${schema}`.slice(0, 63), (m) =>
        warn(`database ${schema}: ${m}`),
      );
      return listener.listen(channelName(schema, channel), onNotify);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // The pool listens for errors only on idle clients: a connection lost while checked out
      // and between statements (a server restart, a terminated backend) emits 'error' with no
      // listener, which would end the process. Caught here, it fails the transaction's next
      // statement instead, and the client is discarded on release.
      let lost: Error | undefined;
      const onError = (err: Error) => {
        lost ??= err;
      };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (sql, params) => query(client, sql, params) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        if (!lost) await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    async close() {
      await listener?.close();
      await pool.end();
    },
  };
}

async function openPglite(options: OpenDatabaseOptions, schema: string): Promise<Database> {
  const inMemory = (): { pglite: PGlite; release(): Promise<void> } => {
    const pglite = new PGlite();
    return { pglite, release: () => pglite.close() };
  };
  // A PGlite passed in belongs to the caller; one opened here is released on close.
  const owned = options.pglite
    ? undefined
    : options.dataDir
      ? await acquirePglite(options.dataDir)
      : inMemory();
  const db: PGlite = options.pglite ?? (owned as { pglite: PGlite }).pglite;
  await db.waitReady;
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  // Unlistened on close: the PGlite may outlive this handle (shared by schemas or by tests).
  const listening = new Set<Unlisten>();
  // PGlite is one connection shared by every handle in the process: each statement runs in a
  // transaction that sets its own search_path, so handles on different schemas never mix.
  const run = <T>(fn: (tx: Queryable) => Promise<T>) =>
    db.transaction(async (tx) => {
      await tx.query(`SET LOCAL search_path TO ${schema}`);
      return fn({
        async query<R>(sql: string, params?: unknown[]) {
          const res = await tx.query<R>(sql, params as unknown[]);
          return { rows: res.rows, rowCount: Math.max(res.affectedRows ?? 0, res.rows.length) };
        },
      });
    });
  return {
    kind: 'pglite',
    schema,
    query: (sql, params) => run((tx) => tx.query(sql, params)),
    transaction: run,
    listen(channel, onNotify) {
      const name = channelName(schema, channel);
      const subscribed = db
        .listen(name, () => onNotify())
        .then(
          (unlisten) => {
            onNotify();
            return unlisten;
          },
          (err: Error) => {
            // Only when the instance is closing or broken; polling still finds the work.
            process.emitWarning(`PGlite LISTEN ${name} failed: ${err.message}`);
            return async () => {};
          },
        );
      const unlisten: Unlisten = async () => {
        if (!listening.delete(unlisten)) return;
        await (await subscribed)().catch(() => {});
      };
      listening.add(unlisten);
      return unlisten;
    },
    async close() {
      await Promise.all([...listening].map((u) => u()));
      await owned?.release();
    },
  };
}

export interface Migration {
  id: string;
  sql: string;
}

/**
 * Applies `migrations` (in order) that this component has not applied yet, each in its own
 * transaction, under an advisory lock so concurrent starts do not race.
 */
export async function migrate(db: Database, component: string, migrations: Migration[]): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`migrate:${db.schema}:${component}`]);
    await tx.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         component text NOT NULL, id text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (component, id))`,
    );
    const done = new Set(
      (
        await tx.query<{ id: string }>('SELECT id FROM schema_migrations WHERE component = $1', [component])
      ).rows.map((r) => r.id),
    );
    const applied: string[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query('INSERT INTO schema_migrations (component, id) VALUES ($1, $2)', [component, m.id]);
      applied.push(m.id);
    }
    return applied;
  });
}

/** Splits a migration on `;` at line ends (migrations here have no procedural bodies). */
function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export { PGlite };
