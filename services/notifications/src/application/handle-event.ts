import { randomUUID } from 'node:crypto';
import type { FleetEvent } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import { traceparentOf } from '@sitemail/service-kit';
import type { SiteConfig } from '@sitemail/site-config';
import type { Decision } from '../domain/decision.ts';
import type { EmailKind } from '../domain/emails.ts';
import {
  decideNotifications,
  recipientUserIdFor,
  sendAddressesOf,
  unsubscribableSendsOf,
} from '../domain/policy.ts';
import { type Recipient, recipientProjection } from '../domain/recipient.ts';
import { insertDeliveries, type NewDelivery } from '../store/deliveries.ts';
import { eraseUserDeliveries } from '../store/erasure.ts';
import { recordProcessedEvent } from '../store/processed-events.ts';
import { notifyQueued } from '../store/queue-wake.ts';
import { loadRecipient, saveRecipient } from '../store/recipients.ts';
import { suppressedAmong } from '../store/suppressions.ts';
import { unsubscribedKindsOf } from '../store/unsubscribes.ts';
import { defaultAwaitRecipientMs, redecideAwaitingFor } from './awaiting.ts';

export interface HandledEvent {
  /** True when the event had been processed before: nothing new was created. */
  duplicate: boolean;
  decisions: Decision[];
  /** Ids of the deliveries created (queued, suppressed and awaiting their recipient). */
  deliveryIds: string[];
  queued: number;
  /** Deliveries of earlier events that awaited this event's user and are now queued. */
  released: number;
}

export interface HandleEventOptions {
  /** How long a delivery waits for a recipient not known yet (ms, default 24 h). */
  awaitRecipientMs?: number;
  /** The trace context the deliveries keep for their send; default: the active one (the consumer's span). */
  traceparent?: string | undefined;
}

/** The right-hand side of Message-IDs: the sender's domain, so receivers see a stable, plausible id. */
function messageIdDomain(site: SiteConfig): string {
  const domain = site['email.address']?.split('@')[1];
  return domain && /^[A-Za-z0-9.-]+$/.test(domain) ? domain : 'sitemail.invalid';
}

/**
 * Processes one event in ONE transaction: the recipient projection moves forward (replays of older
 * positions change nothing), the event id is recorded with what was decided, and each decision
 * becomes a delivery (queued, or suppressed with its reason). A redelivered or replayed event hits
 * the primary key of processed_events and creates nothing; the projection still catches up, so
 * replaying the topic into an emptied projection rebuilds it without sending anything.
 *
 * An email whose recipient has not reached notifications yet (another topic, or an invitation in
 * the inviter's stream) becomes a delivery awaiting its recipient, kept with its event; when the
 * user's events move the projection, the same transaction decides it again (see delivery/awaiting.ts).
 */
export async function handleEvent(
  db: Database,
  event: FleetEvent,
  site: SiteConfig,
  now: Date,
  options: HandleEventOptions = {},
): Promise<HandledEvent> {
  // Read here, outside the transaction: a pooled connection's callbacks need not run in our context.
  const traceparent = options.traceparent ?? traceparentOf();
  return db.transaction((tx) => handleEventIn(tx, event, site, now, { ...options, traceparent }));
}

export async function handleEventIn(
  tx: Queryable,
  event: FleetEvent,
  site: SiteConfig,
  now: Date,
  options: HandleEventOptions = {},
): Promise<HandledEvent> {
  let own: Recipient | undefined;
  let released = 0;
  if (event.type !== 'CodeMonitorTriggered') {
    const current = await loadRecipient(tx, event.userId, true);
    own = recipientProjection.evolve(current, event);
    if (own && own !== current && (await saveRecipient(tx, own))) {
      if (own.deleted) {
        // UserDeleted: the tombstone has no keys (401 at once) and the delivery log forgets the user.
        await eraseUserDeliveries(tx, own.userId, now);
      } else {
        // Also on a redelivered event: a projection rebuilt by a replay releases what waited for it.
        released = (await redecideAwaitingFor(tx, own, site, now)).queued;
        if (released > 0) await notifyQueued(tx);
      }
    }
  }
  const recipientId = recipientUserIdFor(event);
  const recipient =
    recipientId === undefined
      ? undefined
      : recipientId === event.userId && own
        ? own
        : await loadRecipient(tx, recipientId);
  // The suppression list is looked up for the addresses the policy would send to, and the policy
  // decides again knowing which are undeliverable (it stays pure; most events send nothing).
  const first = decideNotifications(event, recipient, site);
  const undeliverable = await suppressedAmong(tx, sendAddressesOf(first));
  // Likewise the kinds the recipient unsubscribed from, only when an opt-out-able email would go.
  const unsubscribed =
    recipient && unsubscribableSendsOf(first)
      ? await unsubscribedKindsOf(tx, recipient.userId)
      : new Set<EmailKind>();
  const decisions =
    undeliverable.size > 0 || unsubscribed.size > 0
      ? decideNotifications(event, recipient, site, undeliverable, unsubscribed)
      : first;

  const summary = decisions.map((d) =>
    d.kind === 'send'
      ? { kind: d.kind, email: d.email, to: d.to }
      : { kind: d.kind, email: d.email, reason: d.reason, address: d.address ?? null },
  );
  const awaitUntil = new Date(now.getTime() + (options.awaitRecipientMs ?? defaultAwaitRecipientMs));
  if (!(await recordProcessedEvent(tx, event, summary, now))) {
    return { duplicate: true, decisions: [], deliveryIds: [], queued: 0, released };
  }
  if (decisions.length === 0) return { duplicate: false, decisions, deliveryIds: [], queued: 0, released };

  const domain = messageIdDomain(site);
  const traceparent = options.traceparent ?? traceparentOf() ?? null;
  const rows = decisions.map((d, index): NewDelivery => {
    const id = randomUUID();
    return {
      id,
      decision_index: index,
      email_kind: d.email,
      user_id: d.userId ?? null,
      recipient_address: d.kind === 'send' ? d.to : (d.address ?? null),
      status: statusOf(d),
      suppression_reason: d.kind === 'send' ? null : d.reason,
      message: d.kind === 'send' ? d.message : null,
      message_id: `<${id}@${domain}>`,
      // An awaiting delivery keeps its event to be decided again; its wait ends at next_attempt_at.
      pending_event: d.kind === 'await-recipient' ? event : null,
      recipient_position: recipient?.position ?? null,
      next_attempt_at:
        d.kind === 'send'
          ? now.toISOString()
          : d.kind === 'await-recipient'
            ? awaitUntil.toISOString()
            : null,
      traceparent,
    };
  });
  await insertDeliveries(tx, event, rows, now);
  // Workers in any process wake when this commits (NOTIFY); repeated in one transaction it is sent once.
  if (rows.some((r) => r.status === 'queued')) await notifyQueued(tx);
  return {
    duplicate: false,
    decisions,
    deliveryIds: rows.map((r) => r.id),
    queued: rows.filter((r) => r.status === 'queued').length,
    released,
  };
}

function statusOf(d: Decision): 'queued' | 'suppressed' | 'awaiting-recipient' {
  switch (d.kind) {
    case 'send':
      return 'queued';
    case 'suppress':
      return 'suppressed';
    case 'await-recipient':
      return 'awaiting-recipient';
    default: {
      const unhandled: never = d;
      throw new Error(`statusOf: unhandled decision ${(unhandled as { kind: string }).kind}`);
    }
  }
}
