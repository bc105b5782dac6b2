import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

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
  /** Releases the connections (and the PGlite instance, when this handle owns it). */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Postgres connection string. When absent, an embedded PGlite is used. */
  url?: string | undefined;
  /** PGlite data directory (absent: in memory). Ignored with `url`. */
  dataDir?: string | undefined;
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
  if (options.url) return openPostgres(options.url, schema, options.maxConnections ?? 10);
  return openPglite(options, schema);
}

async function openPostgres(url: string, schema: string, max: number): Promise<Database> {
  // search_path is set per connection at startup, so every pooled connection runs in the schema.
  const pool = new pg.Pool({ connectionString: url, max, options: `-c search_path=${schema}` });
  pool.on('error', () => {
    // An idle client lost its connection; the pool replaces it. Queries in flight get their own error.
  });
  await pool.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
  const query = async <T>(client: pg.Pool | pg.PoolClient, sql: string, params?: unknown[]) => {
    const res = await client.query(sql, params as unknown[]);
    return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
  };
  return {
    kind: 'postgres',
    schema,
    query: (sql, params) => query(pool, sql, params),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn({ query: (sql, params) => query(client, sql, params) });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPglite(options: OpenDatabaseOptions, schema: string): Promise<Database> {
  const owned = !options.pglite;
  const db = options.pglite ?? (options.dataDir ? new PGlite(options.dataDir) : new PGlite());
  await db.waitReady;
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
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
    async close() {
      if (owned) await db.close();
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
