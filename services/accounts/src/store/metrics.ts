import type { Queryable } from '@sitemail/db';

/**
 * Events the relay named `relay` has not published yet: those after its cursor in (xid, seq)
 * order, all of them before it first ran. Counted from the cursor forward on the relay's own
 * index, so the cost is the backlog's size, not the log's.
 */
export async function outboxDepth(db: Queryable, relay: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH cursor AS (
       SELECT xid, seq FROM (
         SELECT xid, seq, 0 AS rank FROM outbox_relays WHERE name = $1
         UNION ALL SELECT '0'::xid8, 0::bigint, 1
       ) c ORDER BY rank LIMIT 1
     )
     SELECT count(*)::int AS n FROM events e, cursor WHERE (e.xid, e.seq) > (cursor.xid, cursor.seq)`,
    [relay],
  );
  return Number(rows[0]?.n ?? 0);
}
