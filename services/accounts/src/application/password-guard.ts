import { beforePasswordAttempt } from '../domain/password-attempts.ts';
import { clearAttemptRecord, lockAttemptRecord, saveAttemptRecord } from '../store/password-attempts.ts';
import type { AccountsContext } from './context.ts';
import { tooManyPasswordFailures } from './errors.ts';

/**
 * Checks a password under the per-account throttle (`domain/password-attempts.ts`): refused with
 * 429 while the account is locked, whatever the caller's address, without checking the password
 * at all (a lock that still answered right or wrong would not slow guessing). `subject` names
 * the account: `user:<id>`, or `login:<what was typed>` when it names nobody, so that unknown
 * logins are throttled alike and the answers do not tell which logins exist.
 */
export async function checkPasswordGuarded(
  ctx: AccountsContext,
  subject: string,
  check: () => Promise<boolean>,
): Promise<boolean> {
  const now = ctx.clock();
  const decision = await ctx.db.transaction(async (tx) => {
    const record = await lockAttemptRecord(tx, subject, now.toISOString());
    const d = beforePasswordAttempt(record.failures === 0 ? null : record, now);
    if (d.allowed) await saveAttemptRecord(tx, subject, d.record);
    return d;
  });
  if (!decision.allowed) throw tooManyPasswordFailures(Math.ceil(decision.retryAfterMs / 1000));
  const ok = await check();
  if (ok) await clearAttemptRecord(ctx.db, subject);
  return ok;
}
