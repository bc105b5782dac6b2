import type { Queryable } from '@sitemail/db';
import type { EmailKind, EmailMessage } from '../domain/emails.ts';
import { type StandingSuppression, standingSuppressionRules } from '../domain/policy.ts';
import { suppressionOutcomeCtes } from './suppressions.ts';

/** A delivery this worker holds the claim on, with what it needs to send. */
export interface ClaimedDelivery {
  id: string;
  to: string;
  message: EmailMessage;
  messageId: string;
  /** The number of this attempt (1 for the first). Completion must name it: a stale claim then writes nothing. */
  attempt: number;
  /** Attempts counted against the limit, this one included: throttled tries do not count. */
  attemptsUsed: number;
  eventId: string;
  userId: string | null;
  /** W3C trace context of the event's handling, continued by the send (null: a new trace). */
  traceparent: string | null;
  /** When the delivery was created: its maximum age runs from here. */
  createdAt: Date;
}

interface ClaimRow {
  id: string;
  recipient_address: string;
  message: EmailMessage;
  message_id: string;
  attempt_count: number;
  throttled_count: number;
  event_id: string;
  user_id: string | null;
  traceparent: string | null;
  created_at: Date | string;
}

/** A due delivery the claim finished as suppressed instead (its address listed, or its kind opted out of). */
export interface SuppressedAtClaim {
  id: string;
  emailKind: EmailKind;
  reason: StandingSuppression;
}

/** `standingSuppression` as rows the claim joins: the rule stays in the policy's module. */
const STANDING_RULES = JSON.stringify(standingSuppressionRules());

/**
 * Claims up to `limit` due deliveries for `worker`. `FOR UPDATE SKIP LOCKED` makes instances
 * running this at the same moment take disjoint rows; the claim (status sending, claimed_until)
 * keeps them from taking the rows later, until it expires.
 *
 * The suppression list and the user's opt-outs are read again here, in the same statement: a
 * delivery queued before its address was listed (or its user unsubscribed from its kind) is
 * finished `suppressed` with the policy's rule (`standingSuppression`), never handed to the
 * mailer, and counts towards `limit` (a full claim still means more may be due).
 */
export async function claimDue(
  db: Queryable,
  o: { worker: string; limit: number; now: Date; claimMs: number },
): Promise<{ claimed: ClaimedDelivery[]; suppressed: SuppressedAtClaim[] }> {
  const { rows } = await db.query<
    ClaimRow & { suppressed_for: StandingSuppression | null; email_kind: EmailKind }
  >(
    `WITH due AS (
       SELECT id, email_kind, user_id, recipient_address FROM deliveries
       WHERE status IN ('queued', 'deferred') AND next_attempt_at <= $2
       ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED
     ), standing AS (
       SELECT due.id, due.email_kind,
         EXISTS (SELECT 1 FROM address_suppressions s
                 WHERE s.address = lower(due.recipient_address) AND s.lifted_at IS NULL) AS undeliverable,
         EXISTS (SELECT 1 FROM unsubscribes u
                 WHERE u.user_id = due.user_id AND u.email_kind = due.email_kind) AS unsubscribed
       FROM due
     ), judged AS (
       SELECT standing.id, rule.reason FROM standing
       LEFT JOIN jsonb_to_recordset($5::jsonb) AS rule(kind text, undeliverable boolean, unsubscribed boolean,
         reason text)
         ON rule.kind = standing.email_kind AND rule.undeliverable = standing.undeliverable
           AND rule.unsubscribed = standing.unsubscribed
     ), suppressed AS (
       UPDATE deliveries d SET status = 'suppressed', suppression_reason = judged.reason, next_attempt_at = NULL,
         claimed_by = NULL, claimed_until = NULL, updated_at = $2
       FROM judged WHERE d.id = judged.id AND judged.reason IS NOT NULL
       RETURNING d.id, d.email_kind, judged.reason
     ), claimed AS (
       UPDATE deliveries d SET status = 'sending', claimed_by = $1, claimed_until = $3,
         attempt_count = d.attempt_count + 1, updated_at = $2
       FROM judged WHERE d.id = judged.id AND judged.reason IS NULL
       RETURNING d.id, d.recipient_address, d.message, d.message_id, d.attempt_count, d.throttled_count, d.event_id,
         d.user_id, d.traceparent, d.created_at, d.email_kind
     )
     SELECT c.*, NULL AS suppressed_for FROM claimed c
     UNION ALL
     SELECT s.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, s.email_kind, s.reason FROM suppressed s`,
    [
      o.worker,
      o.now.toISOString(),
      new Date(o.now.getTime() + o.claimMs).toISOString(),
      o.limit,
      STANDING_RULES,
    ],
  );
  const claimed: ClaimedDelivery[] = [];
  const suppressed: SuppressedAtClaim[] = [];
  for (const r of rows) {
    if (r.suppressed_for) {
      suppressed.push({ id: r.id, emailKind: r.email_kind, reason: r.suppressed_for });
      continue;
    }
    claimed.push({
      id: r.id,
      to: r.recipient_address,
      message: r.message,
      messageId: r.message_id,
      attempt: r.attempt_count,
      attemptsUsed: r.attempt_count - r.throttled_count,
      eventId: r.event_id,
      userId: r.user_id,
      traceparent: r.traceparent,
      createdAt: new Date(r.created_at),
    });
  }
  return { claimed, suppressed };
}

/** `claimDue`'s claims alone (those it suppressed are finished in the database either way). */
export async function claimDueDeliveries(
  db: Queryable,
  o: { worker: string; limit: number; now: Date; claimMs: number },
): Promise<ClaimedDelivery[]> {
  return (await claimDue(db, o)).claimed;
}

/**
 * Puts deliveries whose claim expired (the worker holding them crashed or hung mid-send) back in
 * the queue, recording the lost attempt. A delivery that used up its attempts this way fails.
 * Returns how many were reclaimed.
 */
export async function reclaimExpiredClaims(
  db: Queryable,
  o: { now: Date; maxAttempts: number },
): Promise<number> {
  const { rows } = await db.query<{ n: string }>(
    `WITH expired AS (
       SELECT id, claimed_by, attempt_count, updated_at FROM deliveries
       WHERE status = 'sending' AND claimed_until < $1 FOR UPDATE SKIP LOCKED
     ), moved AS (
       UPDATE deliveries d SET
         status = CASE WHEN d.attempt_count - d.throttled_count >= $2 THEN 'failed' ELSE 'deferred' END,
         next_attempt_at = CASE WHEN d.attempt_count - d.throttled_count >= $2 THEN NULL ELSE $1::timestamptz END,
         failure_reason = CASE WHEN d.attempt_count - d.throttled_count >= $2 THEN 'max-attempts' END,
         claimed_by = NULL, claimed_until = NULL, updated_at = $1,
         last_error = 'the worker sending it stopped before finishing (claim expired)', last_error_step = 'worker'
       FROM expired WHERE d.id = expired.id
       RETURNING d.id
     ), attempts AS (
       INSERT INTO delivery_attempts (delivery_id, attempt, worker, started_at, finished_at, outcome, error_step, error)
       SELECT e.id, e.attempt_count, coalesce(e.claimed_by, 'unknown'), e.updated_at, $1, 'abandoned', 'worker',
         'the worker sending it stopped before finishing (claim expired)'
       FROM expired e JOIN moved m ON m.id = e.id
       ON CONFLICT DO NOTHING
     )
     SELECT count(*) AS n FROM moved`,
    [o.now.toISOString(), o.maxAttempts],
  );
  return Number(rows[0]?.n ?? 0);
}

/** Why a delivery failed for good (`deliveries.failure_reason`). */
export type FailureReason = 'rejected' | 'link-expired' | 'max-age' | 'max-attempts' | 'render';

/** How one attempt ended, as the worker reports it. */
export type AttemptOutcome =
  | {
      delivery: ClaimedDelivery;
      status: 'sent';
      startedAt: Date;
      finishedAt: Date;
      response: string;
      giveUpAt?: Date;
    }
  | {
      delivery: ClaimedDelivery;
      /**
       * 'deferred' retries at `nextAttemptAt`; 'failed' is final (`failureReason` says why);
       * 'throttled' (the provider limits the rate) and 'paused' (the relay refuses the sender: the
       * queue pauses) retry at `nextAttemptAt` without counting the attempt.
       */
      status: 'deferred' | 'failed' | 'throttled' | 'paused';
      startedAt: Date;
      finishedAt: Date;
      nextAttemptAt?: Date;
      error: string;
      step: string;
      responseCode?: number;
      /** Whose problem the reply was (smtp/classify.ts), when there was a send. */
      replyScope?: string;
      failureReason?: FailureReason;
      giveUpAt?: Date;
    };

/**
 * Records attempts and moves their deliveries on (sent, deferred or failed; a throttled or paused
 * attempt leaves its delivery deferred and counts it in `throttled_count`), many in one
 * statement: one commit for a batch of outcomes keeps the database off the sending path. Only
 * rows still held by this worker's claim of that attempt change, so a worker whose claim expired
 * and was taken over writes nothing. The suppression list moves in the same statement (a reply
 * about the address suppresses it, an accepted email lifts it: store/suppressions.ts). Returns the
 * ids recorded.
 */
export async function recordOutcomes(
  db: Queryable,
  worker: string,
  outcomes: AttemptOutcome[],
): Promise<Set<string>> {
  if (outcomes.length === 0) return new Set();
  const rows = outcomes.map((o) => ({
    id: o.delivery.id,
    attempt: o.delivery.attempt,
    status: o.status,
    started_at: o.startedAt.toISOString(),
    finished_at: o.finishedAt.toISOString(),
    next_attempt_at:
      o.status === 'deferred' || o.status === 'throttled' || o.status === 'paused'
        ? (o.nextAttemptAt ?? o.finishedAt).toISOString()
        : null,
    give_up_at: o.giveUpAt?.toISOString() ?? null,
    failure_reason: o.status === 'failed' ? (o.failureReason ?? 'rejected') : null,
    reply_scope: o.status === 'sent' ? null : (o.replyScope ?? null),
    response: o.status === 'sent' ? o.response : null,
    response_code: o.status === 'sent' ? (responseCodeOf(o.response) ?? null) : (o.responseCode ?? null),
    error: o.status === 'sent' ? null : o.error,
    step: o.status === 'sent' ? null : o.step,
  }));
  const { rows: recorded } = await db.query<{ delivery_id: string }>(
    `WITH o AS (
       SELECT * FROM jsonb_to_recordset($2::jsonb) AS o(id uuid, attempt int, status text, started_at timestamptz,
         finished_at timestamptz, next_attempt_at timestamptz, response text, response_code int, error text, step text,
         give_up_at timestamptz, failure_reason text, reply_scope text)
     ), d AS (
       UPDATE deliveries SET status = CASE WHEN o.status IN ('throttled', 'paused') THEN 'deferred' ELSE o.status END,
         throttled_count = deliveries.throttled_count + CASE WHEN o.status IN ('throttled', 'paused') THEN 1 ELSE 0 END,
         give_up_at = coalesce(o.give_up_at, deliveries.give_up_at), failure_reason = o.failure_reason,
         reply_scope = o.reply_scope,
         sent_at = CASE WHEN o.status = 'sent' THEN o.finished_at END,
         smtp_response = CASE WHEN o.status = 'sent' THEN o.response ELSE deliveries.smtp_response END,
         next_attempt_at = o.next_attempt_at, last_error = o.error, last_error_step = o.step,
         claimed_by = NULL, claimed_until = NULL, updated_at = o.finished_at
       FROM o
       WHERE deliveries.id = o.id AND deliveries.claimed_by = $1 AND deliveries.attempt_count = o.attempt
         AND deliveries.status = 'sending'
       RETURNING deliveries.id, deliveries.recipient_address
     )${suppressionOutcomeCtes}
     INSERT INTO delivery_attempts (delivery_id, attempt, worker, started_at, finished_at, outcome, smtp_response,
       response_code, error_step, error, reply_scope)
     SELECT o.id, o.attempt, $1, o.started_at, o.finished_at, o.status, o.response, o.response_code, o.step, o.error,
       o.reply_scope
     FROM o JOIN d ON d.id = o.id
     RETURNING delivery_id`,
    [worker, JSON.stringify(rows)],
  );
  return new Set(recorded.map((r) => r.delivery_id));
}

const responseCodeOf = (response: string): number | undefined => {
  const m = /^(\d{3})/.exec(response);
  return m ? Number(m[1]) : undefined;
};

/**
 * Hands back claims the worker had not started sending (it is stopping): the attempt they were
 * claimed for is undone, so the next worker's attempt has the same number.
 */
export async function handBackClaims(q: Queryable, worker: string, ids: string[]): Promise<void> {
  await q.query(
    `UPDATE deliveries SET status = CASE WHEN attempt_count > 1 THEN 'deferred' ELSE 'queued' END,
       attempt_count = attempt_count - 1, claimed_by = NULL, claimed_until = NULL
     WHERE id = ANY($1::uuid[]) AND claimed_by = $2 AND status = 'sending'`,
    [ids, worker],
  );
}

/**
 * When the relay answers again after a pause: deliveries deferred by a failure of the relay itself
 * (no connection, TLS, EHLO, AUTH, or a config that could not send) are due at once, instead of
 * each waiting out a backoff that knew nothing of the relay's return. Deferrals about one
 * recipient (a 4xx at RCPT: greylisting, a full mailbox) keep their time. Returns how many.
 */
export async function releaseRelayDeferrals(q: Queryable, now: Date): Promise<number> {
  const { rows } = await q.query<{ n: string }>(
    `WITH released AS (
       UPDATE deliveries SET next_attempt_at = $1
       WHERE status = 'deferred' AND next_attempt_at > $1
         AND last_error_step IN ('connect', 'tls', 'ehlo', 'auth', 'config')
       RETURNING id
     )
     SELECT count(*) AS n FROM released`,
    [now.toISOString()],
  );
  return Number(rows[0]?.n ?? 0);
}
