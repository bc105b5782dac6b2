import type { FleetEvent } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import type { EmailMessage } from '../domain/emails.ts';

/** A delivery awaiting its recipient, with the event it is decided again from. */
export interface AwaitingRow {
  id: string;
  decision_index: number;
  pending_event: FleetEvent;
  user_id: string;
  /** The end of its wait. */
  next_attempt_at: Date | string;
}

const SELECT_AWAITING = 'SELECT d.id, d.decision_index, d.pending_event, d.user_id, d.next_attempt_at';

/** The user's awaiting deliveries, locked (a sweep holding one makes this wait, then see its outcome). */
export async function lockAwaitingFor(tx: Queryable, userId: string): Promise<AwaitingRow[]> {
  const { rows } = await tx.query<AwaitingRow>(
    `${SELECT_AWAITING} FROM deliveries d WHERE d.status = 'awaiting-recipient' AND d.user_id = $1
     ORDER BY d.seq FOR UPDATE`,
    [userId],
  );
  return rows;
}

/**
 * Awaiting deliveries whose wait is over, or whose recipient moved past the position they were
 * last decided on; locked, skipping those another transaction holds.
 */
export async function lockAwaitingDue(tx: Queryable, now: Date, limit: number): Promise<AwaitingRow[]> {
  const { rows } = await tx.query<AwaitingRow>(
    `${SELECT_AWAITING} FROM deliveries d LEFT JOIN recipients r ON r.user_id = d.user_id
     WHERE d.status = 'awaiting-recipient'
       AND (d.next_attempt_at <= $1 OR r.position > coalesce(d.recipient_position, 0))
     ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED`,
    [now.toISOString(), limit],
  );
  return rows;
}

/** The recipient can be reached: queued for the worker with its message and address. */
export async function releaseAwaiting(
  tx: Queryable,
  id: string,
  o: { message: EmailMessage; to: string; position: number | null; now: Date },
): Promise<void> {
  const at = o.now.toISOString();
  await tx.query(
    `UPDATE deliveries SET status = 'queued', message = $2, recipient_address = $3, suppression_reason = NULL,
       pending_event = NULL, recipient_position = $4, next_attempt_at = $5, updated_at = $5
     WHERE id = $1 AND status = 'awaiting-recipient'`,
    [id, JSON.stringify(o.message), o.to, o.position, at],
  );
}

/** The wait is over (or a config reason came up): suppressed for good. */
export async function suppressAwaiting(
  tx: Queryable,
  id: string,
  o: { reason: string; address: string | null; position: number | null; now: Date },
): Promise<void> {
  await tx.query(
    `UPDATE deliveries SET status = 'suppressed', suppression_reason = $2, recipient_address = $3,
       pending_event = NULL, recipient_position = $4, next_attempt_at = NULL, updated_at = $5
     WHERE id = $1 AND status = 'awaiting-recipient'`,
    [id, o.reason, o.address, o.position, o.now.toISOString()],
  );
}

/** Still waiting: the reason and the position it was decided on brought up to date. */
export async function keepAwaiting(
  tx: Queryable,
  id: string,
  o: { reason: string; address: string | null; position: number | null; now: Date },
): Promise<void> {
  await tx.query(
    `UPDATE deliveries SET suppression_reason = $2, recipient_address = $3, recipient_position = $4,
       updated_at = $5
     WHERE id = $1 AND status = 'awaiting-recipient'`,
    [id, o.reason, o.address, o.position, o.now.toISOString()],
  );
}
