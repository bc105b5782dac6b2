import type { Queryable } from '@sitemail/db';
import { deleteUnsubscribesOf } from './unsubscribes.ts';

export interface ErasedUser {
  /** Deliveries that were still to be sent (queued, retrying, being sent, awaiting the recipient), now suppressed `user-deleted`. */
  suppressed: number;
  /** Deliveries whose address, message and replies were erased (the suppressed ones included). */
  erased: number;
}

/** The deliveries that concern the user: emails to them, and emails their own stream caused (an invitation they sent names them). */
const OF_USER = `(user_id = $1 OR event_id IN (SELECT event_id FROM processed_events WHERE user_id = $1))`;

/**
 * Erases what the delivery log holds about a deleted user, in the caller's transaction (the one
 * that applies UserDeleted to the recipient). What stays: that each email existed, its kind,
 * status, times, attempt count and reply codes. What goes: the address, the message (template
 * inputs: username, address, sealed link), the pending event of an awaiting delivery, the SMTP
 * replies and errors (they quote addresses), and the addresses in the processed events'
 * decision summaries.
 *
 * A delivery a worker is sending at this moment is suppressed too: the worker's outcome is then
 * not recorded (it only records onto a row still 'sending'), so no reply quoting the address lands
 * after the erasure; that email may still have left.
 */
export async function eraseUserDeliveries(tx: Queryable, userId: string, now: Date): Promise<ErasedUser> {
  const at = now.toISOString();
  const suppressed = await tx.query(
    `UPDATE deliveries SET status = 'suppressed', suppression_reason = 'user-deleted', next_attempt_at = NULL,
       claimed_by = NULL, claimed_until = NULL, pending_event = NULL, updated_at = $2
     WHERE ${OF_USER} AND status IN ('queued', 'deferred', 'sending', 'awaiting-recipient')`,
    [userId, at],
  );
  // The suppression list names the address its deliveries bounced from.
  await tx.query(
    `DELETE FROM address_suppressions WHERE delivery_id IN (SELECT id FROM deliveries WHERE ${OF_USER})`,
    [userId],
  );
  // The kinds the user unsubscribed from (one-click links): only the user id, but it is theirs.
  await deleteUnsubscribesOf(tx, userId);
  // DSN reports (store/bounces.ts) quote the address in their recipient and diagnostic.
  await tx.query(
    `DELETE FROM delivery_bounces WHERE delivery_id IN (SELECT id FROM deliveries WHERE ${OF_USER})`,
    [userId],
  );
  const erased = await tx.query(
    `UPDATE deliveries SET recipient_address = NULL, message = NULL, pending_event = NULL, smtp_response = NULL,
       last_error = NULL, erased_at = $2, updated_at = $2
     WHERE ${OF_USER}`,
    [userId, at],
  );
  await tx.query(
    `UPDATE delivery_attempts SET smtp_response = NULL, error = NULL
     WHERE delivery_id IN (SELECT id FROM deliveries WHERE ${OF_USER})`,
    [userId],
  );
  // The decision summaries name the address each email went to (or would have).
  await tx.query(
    `UPDATE processed_events SET decisions = coalesce(
       (SELECT jsonb_agg(d - 'to' - 'address') FROM jsonb_array_elements(decisions) AS d), '[]'::jsonb)
     WHERE user_id = $1 OR event_id IN (SELECT event_id FROM deliveries WHERE user_id = $1)`,
    [userId],
  );
  return { suppressed: suppressed.rowCount, erased: erased.rowCount };
}
