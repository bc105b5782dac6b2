/**
 * Slowing down password guessing per account, whatever the source address: the per-IP rate limit
 * alone lets many addresses guess at one account. Pure: the store keeps one record per subject
 * (a user, or the login string when it names nobody, so unknown logins behave the same), and
 * time comes in as an argument.
 *
 * Every attempt is counted as a failure *before* the password is checked, in the same locked read
 * and write, so that parallel guesses cannot all slip in before the lock; a success then clears
 * the record. After `FREE_FAILURES` failures within `FAILURE_WINDOW_MS`, the subject is locked for
 * a window that doubles with each further failure, up to `MAX_LOCK_MS`.
 */
export interface AttemptRecord {
  failures: number;
  lastFailureAt: string;
  lockedUntil: string | null;
}

export const FREE_FAILURES = 5;
export const FAILURE_WINDOW_MS = 15 * 60_000;
export const FIRST_LOCK_MS = 60_000;
export const MAX_LOCK_MS = 60 * 60_000;

export type AttemptDecision =
  | { allowed: true; record: AttemptRecord }
  | { allowed: false; retryAfterMs: number };

export function lockFor(failures: number): number {
  if (failures < FREE_FAILURES) return 0;
  return Math.min(MAX_LOCK_MS, FIRST_LOCK_MS * 2 ** (failures - FREE_FAILURES));
}

/** Whether a password may be checked now, and the record to store if so (counting this attempt). */
export function beforePasswordAttempt(record: AttemptRecord | null, now: Date): AttemptDecision {
  const t = now.getTime();
  const lockedUntil = record?.lockedUntil ? Date.parse(record.lockedUntil) : 0;
  if (lockedUntil > t) return { allowed: false, retryAfterMs: lockedUntil - t };
  // Failures are forgotten a window after the later of the last failure and the end of its lock,
  // so that a lock longer than the window still grows on the next failure.
  const counted =
    record && Math.max(Date.parse(record.lastFailureAt), lockedUntil) + FAILURE_WINDOW_MS > t
      ? record.failures
      : 0;
  const failures = counted + 1;
  const lock = lockFor(failures);
  return {
    allowed: true,
    record: {
      failures,
      lastFailureAt: now.toISOString(),
      lockedUntil: lock > 0 ? new Date(t + lock).toISOString() : null,
    },
  };
}
