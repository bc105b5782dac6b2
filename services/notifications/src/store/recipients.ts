import type { Queryable } from '@sitemail/db';
import type { Recipient } from '../domain/recipient.ts';

/** The projected recipient of a user; `forUpdate` locks the row for the rest of the transaction. */
export async function loadRecipient(
  q: Queryable,
  userId: string,
  forUpdate = false,
): Promise<Recipient | undefined> {
  const { rows } = await q.query<{ state: Recipient }>(
    `SELECT state FROM recipients WHERE user_id = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [userId],
  );
  return rows[0]?.state;
}

/**
 * Stores the recipient unless the stored one is already at or past its position (a replay, or a
 * concurrent handler that got there first), and keeps the API-key lookup table in step.
 * Returns whether it was written.
 */
export async function saveRecipient(q: Queryable, recipient: Recipient): Promise<boolean> {
  const { rowCount } = await q.query(
    `INSERT INTO recipients (user_id, position, state, updated_at) VALUES ($1, $2, $3, now())
     ON CONFLICT (user_id) DO UPDATE SET position = excluded.position, state = excluded.state, updated_at = now()
     WHERE recipients.position < excluded.position`,
    [recipient.userId, recipient.position, JSON.stringify(recipient)],
  );
  if (rowCount === 0) return false;
  await q.query('DELETE FROM recipient_api_keys WHERE user_id = $1', [recipient.userId]);
  if (recipient.apiKeys.length > 0) {
    await q.query(
      `INSERT INTO recipient_api_keys (secret_sha256, key_id, user_id, revoked)
       SELECT k.secret_sha256, k.key_id::uuid, $1, k.revoked
       FROM jsonb_to_recordset($2::jsonb) AS k(secret_sha256 text, key_id text, revoked boolean)
       ON CONFLICT (secret_sha256) DO NOTHING`,
      [
        recipient.userId,
        JSON.stringify(
          recipient.apiKeys.map((k) => ({
            secret_sha256: k.secretSha256,
            key_id: k.keyId,
            revoked: k.revoked,
          })),
        ),
      ],
    );
  }
  return true;
}

export interface ApiKeyOwner {
  userId: string;
  username: string;
  siteAdmin: boolean;
}

/** The user an unrevoked API key (by the SHA-256 of its secret) belongs to, from the projection. */
export async function findApiKeyOwner(q: Queryable, secretSha256: string): Promise<ApiKeyOwner | undefined> {
  const { rows } = await q.query<{ user_id: string; state: Recipient }>(
    `SELECT r.user_id, r.state FROM recipient_api_keys k JOIN recipients r ON r.user_id = k.user_id
     WHERE k.secret_sha256 = $1 AND NOT k.revoked`,
    [secretSha256],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { userId: row.user_id, username: row.state.username, siteAdmin: row.state.siteAdmin };
}

/**
 * The stored recipients of these users, locked for the rest of the transaction when `forUpdate`
 * (in user-id order, so two batches locking overlapping users wait rather than deadlock).
 */
export async function loadRecipients(
  q: Queryable,
  userIds: string[],
  forUpdate = false,
): Promise<Map<string, Recipient>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await q.query<{ user_id: string; state: Recipient }>(
    `SELECT user_id, state FROM recipients WHERE user_id = ANY($1::uuid[]) ORDER BY user_id${forUpdate ? ' FOR UPDATE' : ''}`,
    [userIds],
  );
  return new Map(rows.map((r) => [r.user_id, r.state]));
}

/**
 * `saveRecipient` for many users in one statement (the API-key table in two more, only for users
 * whose keys changed): a recipient is written unless the stored one is at or past its position.
 * Returns the ids of those written.
 */
export async function saveRecipients(
  q: Queryable,
  recipients: { recipient: Recipient; keysChanged: boolean }[],
): Promise<Set<string>> {
  if (recipients.length === 0) return new Set();
  const { rows } = await q.query<{ user_id: string }>(
    `INSERT INTO recipients (user_id, position, state, updated_at)
     SELECT r.user_id, r.position, r.state, now()
     FROM jsonb_to_recordset($1::jsonb) AS r(user_id uuid, position integer, state jsonb)
     ON CONFLICT (user_id) DO UPDATE SET position = excluded.position, state = excluded.state, updated_at = now()
     WHERE recipients.position < excluded.position
     RETURNING user_id`,
    [
      JSON.stringify(
        recipients.map(({ recipient }) => ({
          user_id: recipient.userId,
          position: recipient.position,
          state: recipient,
        })),
      ),
    ],
  );
  const written = new Set(rows.map((r) => r.user_id));
  const rekeyed = recipients.filter((r) => r.keysChanged && written.has(r.recipient.userId));
  if (rekeyed.length > 0) {
    await q.query('DELETE FROM recipient_api_keys WHERE user_id = ANY($1::uuid[])', [
      rekeyed.map((r) => r.recipient.userId),
    ]);
    const keys = rekeyed.flatMap(({ recipient }) =>
      recipient.apiKeys.map((k) => ({
        secret_sha256: k.secretSha256,
        key_id: k.keyId,
        user_id: recipient.userId,
        revoked: k.revoked,
      })),
    );
    if (keys.length > 0) {
      await q.query(
        `INSERT INTO recipient_api_keys (secret_sha256, key_id, user_id, revoked)
         SELECT k.secret_sha256, k.key_id, k.user_id, k.revoked
         FROM jsonb_to_recordset($1::jsonb) AS k(secret_sha256 text, key_id uuid, user_id uuid, revoked boolean)
         ON CONFLICT (secret_sha256) DO NOTHING`,
        [JSON.stringify(keys)],
      );
    }
  }
  return written;
}

/** Which of these users have deliveries awaiting them (to be decided again when they move). */
export async function recipientsAwaited(q: Queryable, userIds: string[]): Promise<Set<string>> {
  if (userIds.length === 0) return new Set();
  const { rows } = await q.query<{ user_id: string }>(
    `SELECT DISTINCT user_id FROM deliveries WHERE status = 'awaiting-recipient' AND user_id = ANY($1::uuid[])`,
    [userIds],
  );
  return new Set(rows.map((r) => r.user_id));
}
