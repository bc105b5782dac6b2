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

/** Which of these event ids were recorded as handled. */
export async function processedAmong(q: Queryable, eventIds: string[]): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const { rows } = await q.query<{ event_id: string }>(
    'SELECT event_id FROM processed_events WHERE event_id = ANY($1::uuid[])',
    [eventIds],
  );
  return new Set(rows.map((r) => r.event_id));
}

/**
 * `recordProcessedEvent` for many events in one statement; returns the ids recorded now. An id
 * missing from it was recorded before (by a concurrent handler): that event must create nothing.
 */
export async function recordProcessedEvents(
  tx: Queryable,
  events: { event: FleetEvent; decisions: unknown[] }[],
  now: Date,
): Promise<Set<string>> {
  if (events.length === 0) return new Set();
  const { rows } = await tx.query<{ event_id: string }>(
    `INSERT INTO processed_events (event_id, event_type, user_id, position, decisions, processed_at)
     SELECT e.event_id, e.event_type, e.user_id, e.position, e.decisions, $2
     FROM jsonb_to_recordset($1::jsonb) AS e(event_id uuid, event_type text, user_id uuid, position integer, decisions jsonb)
     ON CONFLICT (event_id) DO NOTHING
     RETURNING event_id`,
    [
      JSON.stringify(
        events.map(({ event, decisions }) => ({
          event_id: event.id,
          event_type: event.type,
          user_id: event.userId,
          position: event.position,
          decisions,
        })),
      ),
      now.toISOString(),
    ],
  );
  return new Set(rows.map((r) => r.event_id));
}
