import type { Queryable } from '@sitemail/db';

/** Deliveries by status (queued, sending, sent, deferred, failed, suppressed, awaiting-recipient, …), on the status index. */
export async function deliveriesByStatus(db: Queryable): Promise<{ status: string; count: number }[]> {
  const { rows } = await db.query<{ status: string; n: number }>(
    'SELECT status, count(*)::int AS n FROM deliveries GROUP BY status',
  );
  return rows.map((r) => ({ status: r.status, count: Number(r.n) }));
}

/** Recipients (users) that deliveries wait for: their stream has not reached notifications yet. */
export async function awaitedRecipients(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(DISTINCT user_id)::int AS n FROM deliveries WHERE status = 'awaiting-recipient'",
  );
  return Number(rows[0]?.n ?? 0);
}
