import type { Queryable } from '@sitemail/db';

/** Every stream of the event store that has events (for checks over all that was appended). */
export async function streamIds(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ stream_id: string }>('SELECT DISTINCT stream_id FROM events');
  return rows.map((r) => r.stream_id);
}

/** Every event's type and stream, in commit order. */
export async function eventsInCommitOrder(db: Queryable): Promise<{ type: string; stream_id: string }[]> {
  const { rows } = await db.query<{ type: string; stream_id: string }>(
    'SELECT type, stream_id FROM events ORDER BY seq',
  );
  return rows;
}
