import type { Queryable } from '@sitemail/db';

/** A claim a worker holds: the delivery and the attempt it was claimed for. */
export interface HeldClaim {
  id: string;
  attempt: number;
}

/**
 * The worker's heartbeat: moves `claimed_until` of the claims it still holds (this attempt, still
 * sending) to `until`, so only a worker that stopped beating (killed, frozen, cut off from the
 * database) lets its claims expire, after one short lease instead of a worst-case send time.
 * Never moves a claim back (GREATEST). Returns the ids still held: one missing expired and was
 * reclaimed, so the worker must not send it.
 */
export async function renewClaims(
  db: Queryable,
  worker: string,
  held: HeldClaim[],
  until: Date,
): Promise<Set<string>> {
  if (held.length === 0) return new Set();
  const { rows } = await db.query<{ id: string }>(
    `UPDATE deliveries d SET claimed_until = GREATEST(d.claimed_until, $3::timestamptz)
     FROM jsonb_to_recordset($2::jsonb) AS h(id uuid, attempt int)
     WHERE d.id = h.id AND d.claimed_by = $1 AND d.attempt_count = h.attempt AND d.status = 'sending'
     RETURNING d.id`,
    [worker, JSON.stringify(held), until.toISOString()],
  );
  return new Set(rows.map((r) => r.id));
}
