import type { Database } from '@sitemail/db';

/** Statuses a delivery never leaves: only these are purged (a queued or retrying one is still work). */
const FINAL = `('sent', 'failed', 'suppressed')`;

/**
 * Purges one batch of finished deliveries created before `before`, with their attempts. The rows
 * are locked SKIP LOCKED, so several instances purge disjoint batches side by side and none waits
 * for another (or for a worker touching a row).
 */
export async function purgeExpiredDeliveries(
  db: Database,
  o: { before: Date; limit: number },
): Promise<{ deliveries: number; attempts: number }> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM deliveries WHERE status IN ${FINAL} AND created_at < $1
       ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [o.before.toISOString(), o.limit],
    );
    if (rows.length === 0) return { deliveries: 0, attempts: 0 };
    const ids = rows.map((r) => r.id);
    const attempts = await tx.query('DELETE FROM delivery_attempts WHERE delivery_id = ANY($1::uuid[])', [
      ids,
    ]);
    const deliveries = await tx.query('DELETE FROM deliveries WHERE id = ANY($1::uuid[])', [ids]);
    return { deliveries: deliveries.rowCount, attempts: attempts.rowCount };
  });
}

/**
 * Purges one batch of processed-event rows recorded before `before` (the topic's retention: no
 * copy of such an event can be redelivered) that no delivery still refers to; those go once the
 * delivery log's retention has purged their deliveries.
 */
export async function purgeExpiredProcessedEvents(
  db: Database,
  o: { before: Date; limit: number },
): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM processed_events WHERE event_id IN (
       SELECT p.event_id FROM processed_events p
       WHERE p.processed_at < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = p.event_id)
       ORDER BY p.processed_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [o.before.toISOString(), o.limit],
  );
  return rowCount;
}
