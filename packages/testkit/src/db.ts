import { randomBytes } from 'node:crypto';
import { type Database, openDatabase, PGlite } from '@sitemail/db';

let sharedPglite: PGlite | undefined;

/** One PGlite per test process: it takes seconds and hundreds of MiB to start. */
function pglite(): PGlite {
  sharedPglite ??= new PGlite();
  return sharedPglite;
}

export interface TestDatabase extends Database {
  /** Drops the test's schema and releases connections. */
  close(): Promise<void>;
}

/**
 * A database isolated in a fresh schema: on the real Postgres of `DATABASE_URL` when set,
 * else on the process's shared PGlite. `kind` says which, so suites can name it.
 */
export async function testDatabase(
  label = 't',
  options: { maxConnections?: number } = {},
): Promise<TestDatabase> {
  const schema = `${label
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, '_')
    .slice(0, 40)}_${randomBytes(5).toString('hex')}`;
  const url = process.env.DATABASE_URL;
  const db = url
    ? await openDatabase({ url, schema, maxConnections: options.maxConnections ?? 10 })
    : await openDatabase({ pglite: pglite(), schema });
  return {
    ...db,
    kind: db.kind,
    schema: db.schema,
    query: db.query,
    transaction: db.transaction,
    async close() {
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await db.close();
    },
  };
}

/** Which database the tests in this process use, for test names. */
export const testDatabaseKind = (): 'postgres' | 'pglite' =>
  process.env.DATABASE_URL ? 'postgres' : 'pglite';
