import type { Queryable } from '@sitemail/db';

/**
 * Retention of accounts' side tables. A link token (its SHA-256 and the address it went to) is
 * useless once expired, so it goes then, except an invitation's token that was used: its `used_at`
 * is the invitation's "accepted" fact. Deleted in small batches, each a statement of its own
 * (short locks, no long transaction holding back the outbox relay's snapshot), rows claimed with
 * `FOR UPDATE SKIP LOCKED` so that several instances running the job at once never wait on, nor
 * count twice, each other's rows.
 */
export async function purgeExpiredLinkTokens(
  db: Queryable,
  now: Date,
  batchSize: number,
): Promise<{ kind: string }[]> {
  const { rows } = await db.query<{ kind: string }>(
    `DELETE FROM link_tokens WHERE token_sha256 IN (
       SELECT token_sha256 FROM link_tokens
       WHERE expires_at <= $1 AND NOT (kind = 'UserInvited' AND used_at IS NOT NULL)
       ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
     RETURNING kind`,
    [now.toISOString(), batchSize],
  );
  return rows;
}
