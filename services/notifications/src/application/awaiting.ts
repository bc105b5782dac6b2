import type { FleetEvent } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { redecideAwaiting } from '../domain/policy.ts';
import type { Recipient } from '../domain/recipient.ts';
import { loadRecipient } from '../store/recipients.ts';

/** How long a delivery waits for its recipient before it is suppressed for good (24 h). */
export const defaultAwaitRecipientMs = 24 * 60 * 60 * 1000;

interface AwaitingRow {
  id: string;
  decision_index: number;
  pending_event: FleetEvent;
  user_id: string;
  next_attempt_at: Date | string;
}

export interface Redecided {
  /** Now queued for the worker. */
  queued: number;
  /** Now suppressed for good. */
  suppressed: number;
}

/**
 * Decides awaiting deliveries again with the recipient as it stands now and writes the outcome:
 * queued (with its message and address), suppressed (the wait is over, or a config reason), or
 * still waiting with the reason brought up to date. `next_attempt_at` of a waiting row is the end
 * of its wait.
 */
async function redecide(
  tx: Queryable,
  rows: AwaitingRow[],
  recipientOf: (userId: string) => Promise<Recipient | undefined>,
  site: SiteConfig,
  now: Date,
): Promise<Redecided> {
  const out: Redecided = { queued: 0, suppressed: 0 };
  const at = now.toISOString();
  for (const row of rows) {
    const recipient = await recipientOf(row.user_id);
    const waitOver = new Date(row.next_attempt_at).getTime() <= now.getTime();
    const d = redecideAwaiting(row.pending_event, row.decision_index, recipient, site, waitOver);
    const position = recipient?.position ?? null;
    switch (d.kind) {
      case 'send':
        await tx.query(
          `UPDATE deliveries SET status = 'queued', message = $2, recipient_address = $3, suppression_reason = NULL,
             pending_event = NULL, recipient_position = $4, next_attempt_at = $5, updated_at = $5
           WHERE id = $1 AND status = 'awaiting-recipient'`,
          [row.id, JSON.stringify(d.message), d.to, position, at],
        );
        out.queued += 1;
        break;
      case 'suppress':
        await tx.query(
          `UPDATE deliveries SET status = 'suppressed', suppression_reason = $2, recipient_address = $3,
             pending_event = NULL, recipient_position = $4, next_attempt_at = NULL, updated_at = $5
           WHERE id = $1 AND status = 'awaiting-recipient'`,
          [row.id, d.reason, d.address ?? null, position, at],
        );
        out.suppressed += 1;
        break;
      case 'await-recipient':
        await tx.query(
          `UPDATE deliveries SET suppression_reason = $2, recipient_address = $3, recipient_position = $4,
             updated_at = $5
           WHERE id = $1 AND status = 'awaiting-recipient'`,
          [row.id, d.reason, d.address ?? null, position, at],
        );
        break;
      default: {
        const unhandled: never = d;
        throw new Error(`redecide: unhandled decision ${(unhandled as { kind: string }).kind}`);
      }
    }
  }
  return out;
}

const SELECT_AWAITING = 'SELECT d.id, d.decision_index, d.pending_event, d.user_id, d.next_attempt_at';

/**
 * Called in the transaction that has just moved `recipient` forward: its awaiting deliveries are
 * decided again at once, so an email waiting for a user goes out as soon as the user's stream
 * makes it sendable. Locks the rows (a sweep holding one makes this wait, then see its outcome).
 */
export async function redecideAwaitingFor(
  tx: Queryable,
  recipient: Recipient,
  site: SiteConfig,
  now: Date,
): Promise<Redecided> {
  const { rows } = await tx.query<AwaitingRow>(
    `${SELECT_AWAITING} FROM deliveries d WHERE d.status = 'awaiting-recipient' AND d.user_id = $1
     ORDER BY d.seq FOR UPDATE`,
    [recipient.userId],
  );
  if (rows.length === 0) return { queued: 0, suppressed: 0 };
  return redecide(tx, rows, async () => recipient, site, now);
}

/**
 * The worker's sweep over awaiting deliveries: those whose wait is over, and those whose recipient
 * moved past the position they were last decided on. The second catches an event handled at the
 * same moment as its recipient's UserCreated in another transaction: neither saw the other's
 * uncommitted rows, so the handler of the user's event could not release it.
 */
export async function sweepAwaitingDeliveries(
  db: Database,
  o: { site: SiteConfig; now: Date; limit?: number },
): Promise<Redecided> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<AwaitingRow>(
      `${SELECT_AWAITING} FROM deliveries d LEFT JOIN recipients r ON r.user_id = d.user_id
       WHERE d.status = 'awaiting-recipient'
         AND (d.next_attempt_at <= $1 OR r.position > coalesce(d.recipient_position, 0))
       ORDER BY d.next_attempt_at LIMIT $2 FOR UPDATE OF d SKIP LOCKED`,
      [o.now.toISOString(), o.limit ?? 200],
    );
    if (rows.length === 0) return { queued: 0, suppressed: 0 };
    return redecide(tx, rows, (userId) => loadRecipient(tx, userId), o.site, o.now);
  });
}
