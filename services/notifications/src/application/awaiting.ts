import type { Database, Queryable } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import type { EmailKind } from '../domain/emails.ts';
import type { Recipient } from '../domain/recipient.ts';
import { redecideAwaiting } from '../domain/redecide.ts';
import {
  type AwaitingRow,
  keepAwaiting,
  lockAwaitingDue,
  lockAwaitingFor,
  releaseAwaiting,
  suppressAwaiting,
} from '../store/awaiting.ts';
import { loadRecipient } from '../store/recipients.ts';
import { suppressedAmong } from '../store/suppressions.ts';
import { unsubscribedKindsOf } from '../store/unsubscribes.ts';

/** How long a delivery waits for its recipient before it is suppressed for good (24 h). */
export const defaultAwaitRecipientMs = 24 * 60 * 60 * 1000;

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
  for (const row of rows) {
    const recipient = await recipientOf(row.user_id);
    const waitOver = new Date(row.next_attempt_at).getTime() <= now.getTime();
    const unsubscribed = recipient ? await unsubscribedKindsOf(tx, recipient.userId) : new Set<EmailKind>();
    let d = redecideAwaiting(row.pending_event, row.decision_index, recipient, site, waitOver, unsubscribed);
    if (d.kind === 'send') {
      // The address may have been listed while the email waited: decided again knowing it.
      const undeliverable = await suppressedAmong(tx, [d.to]);
      if (undeliverable.size > 0) {
        d = redecideAwaiting(
          row.pending_event,
          row.decision_index,
          recipient,
          site,
          waitOver,
          unsubscribed,
          undeliverable,
        );
      }
    }
    const position = recipient?.position ?? null;
    switch (d.kind) {
      case 'send':
        await releaseAwaiting(tx, row.id, { message: d.message, to: d.to, position, now });
        out.queued += 1;
        break;
      case 'suppress':
        await suppressAwaiting(tx, row.id, { reason: d.reason, address: d.address ?? null, position, now });
        out.suppressed += 1;
        break;
      case 'await-recipient':
        await keepAwaiting(tx, row.id, { reason: d.reason, address: d.address ?? null, position, now });
        break;
      default: {
        const unhandled: never = d;
        throw new Error(`redecide: unhandled decision ${(unhandled as { kind: string }).kind}`);
      }
    }
  }
  return out;
}

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
  const rows = await lockAwaitingFor(tx, recipient.userId);
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
    const rows = await lockAwaitingDue(tx, o.now, o.limit ?? 200);
    if (rows.length === 0) return { queued: 0, suppressed: 0 };
    return redecide(tx, rows, (userId) => loadRecipient(tx, userId), o.site, o.now);
  });
}
