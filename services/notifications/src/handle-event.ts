import { randomUUID } from 'node:crypto';
import type { FleetEvent } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { type Decision, decideNotifications, recipientUserIdFor } from './policy/decide.ts';
import { evolveRecipient, type Recipient } from './recipients/recipient.ts';
import { loadRecipient, saveRecipient } from './recipients/store.ts';

export interface HandledEvent {
  /** True when the event had been processed before: nothing new was created. */
  duplicate: boolean;
  decisions: Decision[];
  /** Ids of the deliveries created (queued and suppressed). */
  deliveryIds: string[];
  queued: number;
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
 */
export async function handleEvent(
  db: Database,
  event: FleetEvent,
  site: SiteConfig,
  now: Date,
): Promise<HandledEvent> {
  return db.transaction((tx) => handleEventIn(tx, event, site, now));
}

export async function handleEventIn(
  tx: Queryable,
  event: FleetEvent,
  site: SiteConfig,
  now: Date,
): Promise<HandledEvent> {
  let own: Recipient | undefined;
  if (event.type !== 'CodeMonitorTriggered') {
    const current = await loadRecipient(tx, event.userId, true);
    own = evolveRecipient(current, event);
    if (own && own !== current) await saveRecipient(tx, own);
  }
  const recipientId = recipientUserIdFor(event);
  const recipient =
    recipientId === undefined
      ? undefined
      : recipientId === event.userId && own
        ? own
        : await loadRecipient(tx, recipientId);
  const decisions = decideNotifications(event, recipient, site);

  const summary = decisions.map((d) =>
    d.kind === 'send'
      ? { kind: d.kind, email: d.email, to: d.to }
      : { kind: d.kind, email: d.email, reason: d.reason, address: d.address ?? null },
  );
  const recorded = await tx.query(
    `INSERT INTO processed_events (event_id, event_type, user_id, position, decisions, processed_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING`,
    [event.id, event.type, event.userId, event.position, JSON.stringify(summary), now.toISOString()],
  );
  if (recorded.rowCount === 0) return { duplicate: true, decisions: [], deliveryIds: [], queued: 0 };
  if (decisions.length === 0) return { duplicate: false, decisions, deliveryIds: [], queued: 0 };

  const domain = messageIdDomain(site);
  const rows = decisions.map((d, index) => {
    const id = randomUUID();
    return {
      id,
      decision_index: index,
      email_kind: d.email,
      user_id: d.userId ?? null,
      recipient_address: d.kind === 'send' ? d.to : (d.address ?? null),
      status: d.kind === 'send' ? 'queued' : 'suppressed',
      suppression_reason: d.kind === 'suppress' ? d.reason : null,
      message: d.kind === 'send' ? d.message : null,
      message_id: `<${id}@${domain}>`,
    };
  });
  // One statement for all of the event's deliveries; (event_id, decision_index) is unique as a second guard.
  await tx.query(
    `INSERT INTO deliveries (id, event_id, event_type, decision_index, email_kind, user_id, recipient_address, status,
       suppression_reason, message, message_id, next_attempt_at, created_at, updated_at)
     SELECT d.id, $2, $3, d.decision_index, d.email_kind, d.user_id, d.recipient_address, d.status,
       d.suppression_reason, d.message, d.message_id, CASE WHEN d.status = 'queued' THEN $4::timestamptz END, $4, $4
     FROM jsonb_to_recordset($1::jsonb) AS d(id uuid, decision_index int, email_kind text, user_id uuid,
       recipient_address text, status text, suppression_reason text, message jsonb, message_id text)`,
    [JSON.stringify(rows), event.id, event.type, now.toISOString()],
  );
  return {
    duplicate: false,
    decisions,
    deliveryIds: rows.map((r) => r.id),
    queued: rows.filter((r) => r.status === 'queued').length,
  };
}
