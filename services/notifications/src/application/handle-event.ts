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
import { insertEventsDeliveries, type NewDelivery } from '../store/deliveries.ts';
import { eraseUserDeliveries } from '../store/erasure.ts';
import { processedAmong, recordProcessedEvents } from '../store/processed-events.ts';
import { notifyQueued } from '../store/queue-wake.ts';
import { loadRecipients, recipientsAwaited, saveRecipients } from '../store/recipients.ts';
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

export interface HandleEventsOptions extends HandleEventOptions {
  /**
   * Runs the handling of each event (the consumer puts it in the event's span); the trace context
   * active when `handle` is called is the one its deliveries keep, unless `traceparent` is given.
   */
  around?: (event: FleetEvent, index: number, handle: () => Promise<HandledEvent>) => Promise<HandledEvent>;
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
  const [handled] = await handleEvents(db, [event], site, now, { ...options, traceparent });
  return handled!;
}

/**
 * `handleEvent` for a consumer's batch (one partition's events, in order) in ONE transaction, each
 * event with the same outcome as if handled alone one after the other. The transaction costs a
 * handful of statements for the whole batch instead of ~10 round trips and a commit per event:
 * the batch's recipients are read (and its own users locked) up front, what was processed before
 * and who has deliveries awaiting in one query each, and the writes (recipients, processed
 * events, deliveries) go out together at the end, or before a step that reads them back (a user's
 * erasure, a release of awaiting deliveries). A failure rolls the whole batch back; the bus
 * redelivers it and the events already recorded are duplicates then.
 */
export async function handleEvents(
  db: Database,
  events: FleetEvent[],
  site: SiteConfig,
  now: Date,
  options: HandleEventsOptions = {},
): Promise<HandledEvent[]> {
  if (events.length === 0) return [];
  return db.transaction(async (tx) => {
    const batch = await EventBatch.begin(tx, events, now);
    const out: HandledEvent[] = [];
    for (const [index, event] of events.entries()) {
      const handle = () =>
        handleInBatch(batch, event, site, now, options, options.traceparent ?? traceparentOf() ?? null);
      out.push(await (options.around ? options.around(event, index, handle) : handle()));
    }
    await batch.flush();
    // Workers in any process wake when this commits (NOTIFY), once for the batch.
    if (batch.queuedSome) await notifyQueued(tx);
    return out;
  });
}

const idKey = (id: string) => id.toLowerCase();
const keysOf = (r: Recipient | undefined) => JSON.stringify(r?.apiKeys ?? []);

interface PendingEvent {
  event: FleetEvent;
  summary: unknown[];
  rows: NewDelivery[];
  handled: HandledEvent;
}

/** What one batch's transaction has read, and what it has decided but not written yet. */
class EventBatch {
  /** Whether a delivery was queued or released (the commit wakes the workers). */
  queuedSome = false;
  private moved = new Map<string, Recipient>();
  private pending: PendingEvent[] = [];

  private constructor(
    readonly tx: Queryable,
    private readonly now: Date,
    /** Each user's recipient as this transaction sees it: stored, or moved by an earlier event. */
    private readonly recipients: Map<string, Recipient | undefined>,
    /** As last written, to know whose API keys changed. */
    private readonly stored: Map<string, Recipient | undefined>,
    /** Events recorded before, or earlier in this batch. */
    private readonly processed: Set<string>,
    /** Users with deliveries awaiting them, stored or created in this batch. */
    private readonly awaited: Set<string>,
  ) {}

  static async begin(tx: Queryable, events: FleetEvent[], now: Date): Promise<EventBatch> {
    // The users whose streams the batch moves are locked (their projection is written); the
    // others it only reads (an invitee, a code monitor's owner), as a single event would.
    const own = [
      ...new Set(events.filter((e) => e.type !== 'CodeMonitorTriggered').map((e) => idKey(e.userId))),
    ];
    const locked = await loadRecipients(tx, own, true);
    const recipients = new Map<string, Recipient | undefined>(own.map((u) => [u, locked.get(u)]));
    const others = [
      ...new Set(
        events.flatMap((e) => {
          const id = recipientUserIdFor(e);
          return id === undefined || recipients.has(idKey(id)) ? [] : [idKey(id)];
        }),
      ),
    ];
    const read = await loadRecipients(tx, others);
    for (const u of others) recipients.set(u, read.get(u));
    const processed = await processedAmong(
      tx,
      events.map((e) => e.id),
    );
    const awaited = await recipientsAwaited(tx, own);
    return new EventBatch(tx, now, recipients, new Map(recipients), processed, awaited);
  }

  recipient(userId: string): Recipient | undefined {
    return this.recipients.get(idKey(userId));
  }

  /** The recipient moved forward; written at the next flush. */
  move(recipient: Recipient): void {
    const key = idKey(recipient.userId);
    this.recipients.set(key, recipient);
    this.moved.set(key, recipient);
  }

  isAwaited(userId: string): boolean {
    return this.awaited.has(idKey(userId));
  }

  /** False when the event was handled before (by an earlier batch, or earlier in this one). */
  firstTime(event: FleetEvent): boolean {
    const key = idKey(event.id);
    if (this.processed.has(key)) return false;
    this.processed.add(key);
    return true;
  }

  record(p: PendingEvent): void {
    this.pending.push(p);
    for (const row of p.rows) {
      if (row.status === 'awaiting-recipient' && row.user_id) this.awaited.add(idKey(row.user_id));
      if (row.status === 'queued') this.queuedSome = true;
    }
  }

  /** Writes what is pending: recipients, then processed events, then the deliveries of those recorded now. */
  async flush(): Promise<void> {
    if (this.moved.size > 0) {
      const moved = [...this.moved.values()];
      this.moved.clear();
      const written = await saveRecipients(
        this.tx,
        moved.map((recipient) => ({
          recipient,
          keysChanged: keysOf(recipient) !== keysOf(this.stored.get(idKey(recipient.userId))),
        })),
      );
      for (const r of moved) if (written.has(idKey(r.userId))) this.stored.set(idKey(r.userId), r);
    }
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    const recorded = await recordProcessedEvents(
      this.tx,
      pending.map((p) => ({ event: p.event, decisions: p.summary })),
      this.now,
    );
    const rows = [];
    for (const p of pending) {
      if (recorded.has(idKey(p.event.id))) {
        rows.push(...p.rows.map((r) => ({ ...r, event_id: p.event.id, event_type: p.event.type })));
      } else {
        // Recorded meanwhile by a concurrent handler (a redelivery racing this one): nothing new.
        Object.assign(p.handled, { duplicate: true, decisions: [], deliveryIds: [], queued: 0 });
      }
    }
    await insertEventsDeliveries(this.tx, rows, this.now);
  }
}

async function handleInBatch(
  batch: EventBatch,
  event: FleetEvent,
  site: SiteConfig,
  now: Date,
  options: HandleEventOptions,
  traceparent: string | null,
): Promise<HandledEvent> {
  const { tx } = batch;
  let own: Recipient | undefined;
  let released = 0;
  if (event.type !== 'CodeMonitorTriggered') {
    const current = batch.recipient(event.userId);
    own = recipientProjection.evolve(current, event);
    // Written unless the stored one is at or past it (the store's own guard, here ahead of the write).
    if (own && own !== current && (current === undefined || own.position > current.position)) {
      batch.move(own);
      if (own.deleted) {
        // UserDeleted: the tombstone has no keys (401 at once) and the delivery log forgets the user.
        await batch.flush();
        await eraseUserDeliveries(tx, own.userId, now);
      } else if (batch.isAwaited(own.userId)) {
        // Also on a redelivered event: a projection rebuilt by a replay releases what waited for it.
        await batch.flush();
        released = (await redecideAwaitingFor(tx, own, site, now)).queued;
        if (released > 0) batch.queuedSome = true;
      }
    }
  }
  if (!batch.firstTime(event))
    return { duplicate: true, decisions: [], deliveryIds: [], queued: 0, released };

  const recipientId = recipientUserIdFor(event);
  const recipient =
    recipientId === undefined
      ? undefined
      : idKey(recipientId) === idKey(event.userId) && own
        ? own
        : batch.recipient(recipientId);
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
  const domain = messageIdDomain(site);
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
  const handled: HandledEvent = {
    duplicate: false,
    decisions,
    deliveryIds: rows.map((r) => r.id),
    queued: rows.filter((r) => r.status === 'queued').length,
    released,
  };
  batch.record({ event, summary, rows, handled });
  return handled;
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
