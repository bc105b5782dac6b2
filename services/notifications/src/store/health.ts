import type { Queryable } from '@sitemail/db';

/** Resolves when the database answers a trivial statement: the readiness check's database part. */
export async function pingDatabase(q: Queryable): Promise<void> {
  await q.query('SELECT 1');
}
