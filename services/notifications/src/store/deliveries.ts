import type { FleetEvent } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import type { EmailKind, EmailMessage } from '../domain/emails.ts';

export const deliveryStatuses = [
  'queued',
  'sending',
  'sent',
  'deferred',
  'failed',
  'suppressed',
  'awaiting-recipient',
] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

/** A delivery as an event's decision creates it. */
export interface NewDelivery {
  id: string;
  decision_index: number;
  email_kind: EmailKind;
  user_id: string | null;
  recipient_address: string | null;
  status: 'queued' | 'suppressed' | 'awaiting-recipient';
  suppression_reason: string | null;
  message: EmailMessage | null;
  message_id: string;
  /** An awaiting delivery keeps its event, to be decided again. */
  pending_event: FleetEvent | null;
  recipient_position: number | null;
  next_attempt_at: string | null;
  /** W3C trace context of the event's handling, continued by the worker's send; null without one. */
  traceparent: string | null;
}

/** Every delivery of one event, in one statement; (event_id, decision_index) is unique as a second guard. */
export async function insertDeliveries(
  tx: Queryable,
  event: FleetEvent,
  rows: NewDelivery[],
  now: Date,
): Promise<void> {
  await insertEventsDeliveries(
    tx,
    rows.map((r) => ({ ...r, event_id: event.id, event_type: event.type })),
    now,
  );
}

/** The deliveries of several events (a consumer's batch) in one statement. */
export async function insertEventsDeliveries(
  tx: Queryable,
  rows: (NewDelivery & { event_id: string; event_type: string })[],
  now: Date,
): Promise<void> {
  if (rows.length === 0) return;
  await tx.query(
    `INSERT INTO deliveries (id, event_id, event_type, decision_index, email_kind, user_id, recipient_address, status,
       suppression_reason, message, message_id, pending_event, recipient_position, next_attempt_at, traceparent,
       created_at, updated_at)
     SELECT d.id, d.event_id, d.event_type, d.decision_index, d.email_kind, d.user_id, d.recipient_address, d.status,
       d.suppression_reason, d.message, d.message_id, d.pending_event, d.recipient_position, d.next_attempt_at,
       d.traceparent, $2, $2
     FROM jsonb_to_recordset($1::jsonb) AS d(id uuid, event_id uuid, event_type text, decision_index int,
       email_kind text, user_id uuid, recipient_address text, status text, suppression_reason text, message jsonb,
       message_id text, pending_event jsonb, recipient_position int, next_attempt_at timestamptz, traceparent text)`,
    [JSON.stringify(rows), now.toISOString()],
  );
}

/** A delivery as the delivery log shows it. */
export interface DeliveryRow {
  id: string;
  seq: string;
  status: DeliveryStatus;
  email_kind: EmailKind;
  recipient_address: string | null;
  user_id: string | null;
  event_id: string;
  event_type: string;
  suppression_reason: string | null;
  attempt_count: number;
  next_attempt_at: Date | string | null;
  message_id: string;
  created_at: Date | string;
  updated_at: Date | string;
  sent_at: Date | string | null;
  last_error: string | null;
  last_error_step: string | null;
  smtp_response: string | null;
  /** When retries stop: set at the first attempt (the maximum age, or the link's expiry when sooner). */
  give_up_at: Date | string | null;
  /** The expiry of the link the email carries, if any (read from the message; the token stays sealed). */
  link_expires_at: string | null;
  /** Why a failed delivery failed: rejected | link-expired | max-age | max-attempts | render. */
  failure_reason: string | null;
  /** Whose problem the last failed reply was: address | message | sender | transient (smtp/classify.ts). */
  reply_scope: string | null;
}

const COLUMNS = `id, seq, status, email_kind, recipient_address, user_id, event_id, event_type, suppression_reason,
  attempt_count, next_attempt_at, message_id, created_at, updated_at, sent_at, last_error, last_error_step, smtp_response,
  give_up_at, message->'link'->>'expiresAt' AS link_expires_at, failure_reason, reply_scope`;

export interface DeliveryFilter {
  userId?: string | undefined;
  /** Compared case-insensitively. */
  address?: string | undefined;
  status?: DeliveryStatus | undefined;
  eventId?: string | undefined;
  /** Only deliveries older than this `seq` (the previous page's cursor). */
  before?: string | undefined;
  limit: number;
}

/** Newest first; at most `limit` rows. */
export async function listDeliveries(q: Queryable, f: DeliveryFilter): Promise<DeliveryRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    params.push(value);
    where.push(sql.replace('?', `$${params.length}`));
  };
  if (f.userId) add('user_id = ?', f.userId);
  if (f.address) add('lower(recipient_address) = lower(?)', f.address);
  if (f.status) add('status = ?', f.status);
  if (f.eventId) add('event_id = ?', f.eventId);
  if (f.before) add('seq < ?', f.before);
  params.push(f.limit);
  const { rows } = await q.query<DeliveryRow>(
    `SELECT ${COLUMNS} FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY seq DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}

export async function findDelivery(q: Queryable, id: string): Promise<DeliveryRow | undefined> {
  const { rows } = await q.query<DeliveryRow>(`SELECT ${COLUMNS} FROM deliveries WHERE id = $1`, [id]);
  return rows[0];
}

/** Counts by status, for tests and the bench. */
export async function countByStatus(q: Queryable): Promise<Record<DeliveryStatus, number>> {
  const { rows } = await q.query<{ status: DeliveryStatus; n: string }>(
    'SELECT status, count(*) AS n FROM deliveries GROUP BY status',
  );
  const out = Object.fromEntries(deliveryStatuses.map((s) => [s, 0])) as Record<DeliveryStatus, number>;
  for (const r of rows) out[r.status] = Number(r.n);
  return out;
}
