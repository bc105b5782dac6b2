import type { Queryable } from '@sitemail/db';
import type { EmailKind } from '../domain/emails.ts';

/** The email kinds the user unsubscribed from (one-click links): the policy's input. */
export async function unsubscribedKindsOf(q: Queryable, userId: string): Promise<Set<EmailKind>> {
  const { rows } = await q.query<{ email_kind: EmailKind }>(
    'SELECT email_kind FROM unsubscribes WHERE user_id = $1',
    [userId],
  );
  return new Set(rows.map((r) => r.email_kind));
}

/**
 * Records that the user opted out of a kind; the first time is kept (a repeated one-click POST
 * changes nothing). Nothing is recorded for a deleted user (their tombstone) or one notifications
 * never knew: erasure removed their rows and no email will go to them anyway. Returns whether a
 * row was written now.
 */
export async function recordUnsubscribe(
  q: Queryable,
  userId: string,
  kind: EmailKind,
  now: Date,
): Promise<boolean> {
  const r = await q.query(
    `INSERT INTO unsubscribes (user_id, email_kind, unsubscribed_at)
     SELECT $1, $2, $3 WHERE EXISTS (
       SELECT 1 FROM recipients WHERE user_id = $1 AND coalesce((state->>'deleted')::boolean, false) = false)
     ON CONFLICT (user_id, email_kind) DO NOTHING`,
    [userId, kind, now.toISOString()],
  );
  return r.rowCount > 0;
}

/** Erasure (UserDeleted): the user's unsubscribes go with the rest of what is kept about them. */
export async function deleteUnsubscribesOf(q: Queryable, userId: string): Promise<number> {
  return (await q.query('DELETE FROM unsubscribes WHERE user_id = $1', [userId])).rowCount;
}
