import type { Queryable } from '@sitemail/db';

/** Every row of every table of the schema as text (the event log and the outbox cursor included). */
export async function everyRow(db: Queryable & { schema: string }): Promise<string[]> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 AND table_type = 'BASE TABLE'`,
    [db.schema],
  );
  const out: string[] = [];
  for (const { table_name } of tables) {
    const { rows } = await db.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
    out.push(...rows.map((r) => `${table_name}: ${r.row}`));
  }
  return out;
}
