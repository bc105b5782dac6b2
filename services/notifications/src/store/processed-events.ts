import type { FleetEvent } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';

/**
 * Records that the event was handled, with a summary of what was decided. False when it had been
 * recorded before (the event id is the primary key): a redelivered or replayed event, which must
 * create nothing.
 */
export async function recordProcessedEvent(
  tx: Queryable,
  event: FleetEvent,
  decisions: unknown[],
  now: Date,
): Promise<boolean> {
  const recorded = await tx.query(
    `INSERT INTO processed_events (event_id, event_type, user_id, position, decisions, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
    [event.id, event.type, event.userId, event.position, JSON.stringify(decisions), now.toISOString()],
  );
  return recorded.rowCount !== 0;
}
