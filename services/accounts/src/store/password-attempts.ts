import type { Queryable } from '@sitemail/db';
import type { AttemptRecord } from '../domain/password-attempts.ts';

/**
 * The per-account record of failed password checks, locked for the rest of the transaction. A
 * missing one is created empty first, so that parallel first attempts queue on the same row
 * instead of each seeing none.
 */
export async function lockAttemptRecord(tx: Queryable, subject: string, now: string): Promise<AttemptRecord> {
  await tx.query(
    `INSERT INTO password_attempts (subject, failures, last_failure_at) VALUES ($1, 0, $2)
     ON CONFLICT (subject) DO NOTHING`,
    [subject, now],
  );
  const { rows } = await tx.query<{ failures: number; last_failure_at: Date; locked_until: Date | null }>(
    'SELECT failures, last_failure_at, locked_until FROM password_attempts WHERE subject = $1 FOR UPDATE',
    [subject],
  );
  const row = rows[0];
  if (!row) throw new Error('password attempt record missing after insert');
  return {
    failures: Number(row.failures),
    lastFailureAt: new Date(row.last_failure_at).toISOString(),
    lockedUntil: row.locked_until ? new Date(row.locked_until).toISOString() : null,
  };
}

export async function saveAttemptRecord(
  tx: Queryable,
  subject: string,
  record: AttemptRecord,
): Promise<void> {
  await tx.query(
    `INSERT INTO password_attempts (subject, failures, last_failure_at, locked_until) VALUES ($1, $2, $3, $4)
     ON CONFLICT (subject) DO UPDATE SET failures = EXCLUDED.failures,
       last_failure_at = EXCLUDED.last_failure_at, locked_until = EXCLUDED.locked_until`,
    [subject, record.failures, record.lastFailureAt, record.lockedUntil],
  );
}

/** A right password: the account's failures are forgotten. */
export async function clearAttemptRecord(db: Queryable, subject: string): Promise<void> {
  await db.query('DELETE FROM password_attempts WHERE subject = $1', [subject]);
}
