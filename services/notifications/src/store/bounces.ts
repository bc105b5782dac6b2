import type { Queryable } from '@sitemail/db';
import type { ReplyScope } from '../smtp/classify.ts';
import type { DsnAction } from '../smtp/dsn.ts';
import { suppressionOutcomeCtes } from './suppressions.ts';

/** A delivery a DSN may be about, found by id (envelope id, X-Sitemail-Delivery) or Message-ID. */
export interface BounceTarget {
  id: string;
  message_id: string;
  recipient_address: string | null;
  status: string;
}

/** Deliveries with any of these ids or Message-IDs (ids that are not uuids are left out by the caller). */
export async function findBounceTargets(
  q: Queryable,
  o: { ids: string[]; messageIds: string[] },
): Promise<BounceTarget[]> {
  if (o.ids.length === 0 && o.messageIds.length === 0) return [];
  const { rows } = await q.query<BounceTarget>(
    `SELECT id, message_id, recipient_address, status FROM deliveries
     WHERE id = ANY($1::uuid[]) OR message_id = ANY($2::text[])`,
    [o.ids, o.messageIds],
  );
  return rows;
}

/** One per-recipient report of a DSN, matched to a delivery, to record. */
export interface NewBounce {
  deliveryId: string;
  /** A digest of the report's fields: the same report again is the same key (see migration 009). */
  reportKey: string;
  action: DsnAction;
  status: string | null;
  finalRecipient: string;
  diagnosticCode: string | null;
  remoteMta: string | null;
  reportingMta: string | null;
  originalEnvelopeId: string | null;
  /** classify's scope of a failed report; null for the other actions. */
  replyScope: ReplyScope | null;
  /** A failed report: the delivery, if still 'sent', fails 'bounced' with `error`. */
  bounces: boolean;
  /** What the delivery log and the suppression list keep as the reply. */
  error: string | null;
  responseCode: number | null;
}

export type BounceEffect = 'bounced' | 'recorded';

/**
 * Records reports and applies them in one statement: a new failed report about a delivery still
 * 'sent' fails it (`failure_reason` 'bounced', its scope and reply), and one of scope 'address'
 * puts the address on the suppression list through the list's own CTEs (store/suppressions.ts),
 * exactly as a final reply at SMTP time does. A report already recorded (same delivery, same
 * key) inserts nothing and so changes nothing: the same DSN posted twice is a no-op. Returns the
 * reports newly recorded, with what each did.
 */
export async function recordBounces(
  q: Queryable,
  bounces: NewBounce[],
  receivedBy: string,
  now: Date,
): Promise<{ deliveryId: string; reportKey: string; effect: BounceEffect }[]> {
  if (bounces.length === 0) return [];
  const rows = bounces.map((b) => ({
    delivery_id: b.deliveryId,
    report_key: b.reportKey,
    action: b.action,
    status: b.status,
    final_recipient: b.finalRecipient,
    diagnostic_code: b.diagnosticCode,
    remote_mta: b.remoteMta,
    reporting_mta: b.reportingMta,
    original_envelope_id: b.originalEnvelopeId,
    reply_scope: b.replyScope,
    bounces: b.bounces,
    error: b.error,
    response_code: b.responseCode,
  }));
  const { rows: recorded } = await q.query<{ delivery_id: string; report_key: string; effect: BounceEffect }>(
    `WITH r AS (
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(delivery_id uuid, report_key text, action text, status text,
         final_recipient text, diagnostic_code text, remote_mta text, reporting_mta text, original_envelope_id text,
         reply_scope text, bounces boolean, error text, response_code int)
     ), ins AS (
       INSERT INTO delivery_bounces (delivery_id, report_key, action, status, final_recipient, diagnostic_code,
         remote_mta, reporting_mta, original_envelope_id, reply_scope, effect, received_at, received_by)
       SELECT r.delivery_id, r.report_key, r.action, r.status, r.final_recipient, r.diagnostic_code, r.remote_mta,
         r.reporting_mta, r.original_envelope_id, r.reply_scope,
         CASE WHEN r.bounces AND EXISTS (SELECT 1 FROM deliveries x WHERE x.id = r.delivery_id AND x.status = 'sent')
           THEN 'bounced' ELSE 'recorded' END,
         $2, $3
       FROM r
       ON CONFLICT (delivery_id, report_key) DO NOTHING
       RETURNING delivery_id, report_key, effect
     ), o AS (
       -- Shaped as store/queue.ts's outcomes, which the suppression list's CTEs read.
       SELECT r.delivery_id AS id, NULL::int AS attempt, 'failed'::text AS status, $2::timestamptz AS started_at,
         $2::timestamptz AS finished_at, NULL::timestamptz AS next_attempt_at, NULL::text AS response,
         r.response_code, r.error, NULL::text AS step, NULL::timestamptz AS give_up_at,
         'bounced'::text AS failure_reason, r.reply_scope
       FROM r JOIN ins ON ins.delivery_id = r.delivery_id AND ins.report_key = r.report_key
       WHERE ins.effect = 'bounced'
     ), d AS (
       UPDATE deliveries SET status = 'failed', failure_reason = 'bounced', reply_scope = o.reply_scope,
         last_error = o.error, next_attempt_at = NULL, updated_at = o.finished_at
       FROM o
       WHERE deliveries.id = o.id AND deliveries.status = 'sent'
       RETURNING deliveries.id, deliveries.recipient_address
     )${suppressionOutcomeCtes}
     SELECT delivery_id, report_key, effect FROM ins`,
    [JSON.stringify(rows), now.toISOString(), receivedBy],
  );
  return recorded.map((r) => ({ deliveryId: r.delivery_id, reportKey: r.report_key, effect: r.effect }));
}

/** A recorded report, as the delivery log shows it. */
export interface BounceRow {
  action: DsnAction;
  status: string | null;
  final_recipient: string | null;
  diagnostic_code: string | null;
  remote_mta: string | null;
  reporting_mta: string | null;
  original_envelope_id: string | null;
  reply_scope: ReplyScope | null;
  effect: BounceEffect;
  received_at: Date | string;
  received_by: string;
}

/** A delivery's DSN reports, oldest first. */
export async function listBounces(q: Queryable, deliveryId: string): Promise<BounceRow[]> {
  const { rows } = await q.query<BounceRow>(
    `SELECT action, status, final_recipient, diagnostic_code, remote_mta, reporting_mta, original_envelope_id,
       reply_scope, effect, received_at, received_by
     FROM delivery_bounces WHERE delivery_id = $1 ORDER BY received_at, report_key`,
    [deliveryId],
  );
  return rows;
}
