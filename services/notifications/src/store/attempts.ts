import type { Queryable } from '@sitemail/db';

/**
 * 'throttled': the provider limited the sending rate; 'paused': the relay refused the sender or did
 * not answer and the queue paused. Neither try counts against the delivery's attempts.
 */
export type AttemptOutcomeName = 'sent' | 'deferred' | 'failed' | 'abandoned' | 'throttled' | 'paused';

/** One attempt at sending a delivery, as `delivery_attempts` keeps it. */
export interface AttemptRow {
  attempt: number;
  worker: string;
  started_at: Date | string;
  finished_at: Date | string;
  outcome: AttemptOutcomeName;
  smtp_response: string | null;
  response_code: number | null;
  error_step: string | null;
  error: string | null;
  /** Whose problem the reply was (smtp/classify.ts); null when sent. */
  reply_scope: string | null;
}

/** Every attempt at a delivery, first first. (Attempts are written with their outcome by `store/queue.ts`.) */
export async function listAttempts(q: Queryable, deliveryId: string): Promise<AttemptRow[]> {
  const { rows } = await q.query<AttemptRow>(
    `SELECT attempt, worker, started_at, finished_at, outcome, smtp_response, response_code, error_step, error,
       reply_scope
     FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt`,
    [deliveryId],
  );
  return rows;
}
