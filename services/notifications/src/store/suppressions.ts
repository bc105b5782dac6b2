import type { Queryable } from '@sitemail/db';

/** An address on the suppression list (issue 11 item 4), lifted or not. */
export interface SuppressionRow {
  address: string;
  delivery_id: string | null;
  reply: string;
  response_code: number | null;
  suppressed_at: Date | string;
  lifted_at: Date | string | null;
  /** `admin:<user id>` or `delivered:<delivery id>`. */
  lifted_by: string | null;
  /** The delivery that got the reply (null once retention removed it). */
  email_kind: string | null;
  message_id: string | null;
}

const SELECT = `SELECT s.address, s.delivery_id, s.reply, s.response_code, s.suppressed_at, s.lifted_at, s.lifted_by,
    d.email_kind, d.message_id
  FROM address_suppressions s LEFT JOIN deliveries d ON d.id = s.delivery_id`;

/** Which of these addresses (lower-cased) are suppressed now: the policy's input. */
export async function suppressedAmong(q: Queryable, addresses: string[]): Promise<Set<string>> {
  if (addresses.length === 0) return new Set();
  const { rows } = await q.query<{ address: string }>(
    'SELECT address FROM address_suppressions WHERE address = ANY($1::text[]) AND lifted_at IS NULL',
    [addresses.map((a) => a.toLowerCase())],
  );
  return new Set(rows.map((r) => r.address));
}

export async function findSuppression(q: Queryable, address: string): Promise<SuppressionRow | undefined> {
  const { rows } = await q.query<SuppressionRow>(`${SELECT} WHERE s.address = $1`, [address.toLowerCase()]);
  return rows[0];
}

/** Ordered by address; `after` is the last address of the previous page. */
export async function listSuppressions(
  q: Queryable,
  o: { includeLifted: boolean; after?: string | undefined; limit: number },
): Promise<SuppressionRow[]> {
  const { rows } = await q.query<SuppressionRow>(
    `${SELECT} WHERE ($1 OR s.lifted_at IS NULL) AND ($2::text IS NULL OR s.address > $2)
     ORDER BY s.address LIMIT $3`,
    [o.includeLifted, o.after ?? null, o.limit],
  );
  return rows;
}

/**
 * Lifts an active suppression; false when the address is not suppressed now. The lifting's address
 * event (`EmailAddressDeliverable`, cause `admin-lifted` for `admin:` lifts, else `accepted`) is
 * written to the fleet outbox in the same statement.
 */
export async function liftSuppression(
  q: Queryable,
  address: string,
  liftedBy: string,
  now: Date,
): Promise<boolean> {
  const { rows } = await q.query<{ address: string }>(
    `WITH lifted AS (
       UPDATE address_suppressions SET lifted_at = $3, lifted_by = $2
       WHERE address = $1 AND lifted_at IS NULL
       RETURNING address, lifted_at
     ), told AS (
       INSERT INTO address_events_outbox (address, type, cause, occurred_at)
       SELECT address, 'EmailAddressDeliverable', CASE WHEN $2 LIKE 'admin:%' THEN 'admin-lifted' ELSE 'accepted' END,
         lifted_at
       FROM lifted
     )
     SELECT address FROM lifted`,
    [address.toLowerCase(), liftedBy, now.toISOString()],
  );
  return rows.length > 0;
}

/**
 * The suppression list's part of recording outcomes (store/queue.ts `recordOutcomes`), as CTEs of
 * the same statement, so an outcome and what it does to the list commit together: a delivery
 * failed on a reply about the address suppresses it (again, if it was lifted), one sent lifts it.
 * Each listing and lifting writes its address event to the fleet outbox (migration 011) in the
 * same statement, so the fleet hears of a change if and only if it committed; an outcome with
 * `failure_reason` 'bounced' (a DSN, store/bounces.ts) is told as cause `dsn`.
 * `o` is the outcomes, `d` the deliveries updated (with their recipient_address).
 */
export const suppressionOutcomeCtes = `, suppressed AS (
       INSERT INTO address_suppressions (address, delivery_id, reply, response_code, suppressed_at)
       SELECT DISTINCT ON (lower(d.recipient_address)) lower(d.recipient_address), o.id, o.error, o.response_code,
         o.finished_at
       FROM o JOIN d ON d.id = o.id
       WHERE o.status = 'failed' AND o.reply_scope = 'address' AND d.recipient_address IS NOT NULL
       ORDER BY lower(d.recipient_address), o.finished_at DESC
       ON CONFLICT (address) DO UPDATE SET delivery_id = excluded.delivery_id, reply = excluded.reply,
         response_code = excluded.response_code, suppressed_at = excluded.suppressed_at, lifted_at = NULL,
         lifted_by = NULL
       RETURNING address, delivery_id, reply, response_code, suppressed_at
     ), lifted AS (
       UPDATE address_suppressions SET lifted_at = o.finished_at, lifted_by = 'delivered:' || o.id
       FROM o JOIN d ON d.id = o.id
       WHERE o.status = 'sent' AND address_suppressions.address = lower(d.recipient_address)
         AND address_suppressions.lifted_at IS NULL
         AND address_suppressions.address NOT IN (SELECT address FROM suppressed)
       RETURNING address_suppressions.address, o.id AS delivery_id, o.finished_at
     ), told AS (
       INSERT INTO address_events_outbox (address, type, cause, delivery_id, reply, response_code, occurred_at)
       SELECT s.address, 'EmailAddressUndeliverable',
         CASE WHEN o.failure_reason = 'bounced' THEN 'dsn' ELSE 'smtp-reply' END, s.delivery_id, s.reply,
         s.response_code, s.suppressed_at
       FROM suppressed s JOIN o ON o.id = s.delivery_id
       UNION ALL
       SELECT address, 'EmailAddressDeliverable', 'accepted', delivery_id, NULL, NULL, finished_at FROM lifted
     )`;
