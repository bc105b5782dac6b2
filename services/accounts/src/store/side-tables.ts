import type { Queryable } from '@sitemail/db';

/**
 * What commands write beside the projection, in the append's transaction: facts no event may
 * carry (a password hash) or that only the command knows (the first user, a link being used).
 */

/** Claims the site's one first-user row: a second first sign-up fails here and is decided again. */
export async function recordFirstUser(tx: Queryable, userId: string): Promise<void> {
  await tx.query('INSERT INTO site_bootstrap (first_user_id) VALUES ($1)', [userId]);
}

export async function savePasswordHash(
  tx: Queryable,
  userId: string,
  hash: string,
  at: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)
     ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at`,
    [userId, hash, at],
  );
}

/**
 * Marks a link used if it is still usable (unused, unexpired at `at`). False when it is not: a
 * concurrent use of the same link loses here.
 */
export async function useLink(tx: Queryable, sha256: string, at: string): Promise<boolean> {
  const used = await tx.query(
    `UPDATE link_tokens SET used_at = $2
     WHERE token_sha256 = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2`,
    [sha256, at],
  );
  return used.rowCount === 1;
}

/** Uses up every outstanding set-password and reset link of the user (their password changed). */
export async function usePasswordLinks(tx: Queryable, userId: string, at: string): Promise<void> {
  await tx.query(
    `UPDATE link_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL
     AND kind IN ('PasswordSetLinkRequested', 'PasswordResetRequested')`,
    [userId, at],
  );
}

/**
 * Site admins left once this transaction's deletion is projected, counted under a lock that
 * deletions take in turn: two admins deleting each other at once cannot both succeed and leave
 * the site without one (the second counts after the first committed).
 */
export async function siteAdminsLeftAfterDeletion(tx: Queryable): Promise<number> {
  await tx.query("SELECT pg_advisory_xact_lock(hashtext('accounts:user-deletion'))");
  const { rows } = await tx.query<{ n: number | string }>(
    'SELECT count(*) AS n FROM users WHERE site_admin AND deleted_at IS NULL',
  );
  return Number(rows[0]?.n ?? 0);
}
