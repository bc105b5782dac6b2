import { createHash } from 'node:crypto';
import { type AccountsEventData, type LinkTokenKey, openToken, type SealedToken } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import type { StoredEvent } from '@sitemail/event-store';
import { isShredded } from './personal-data.ts';

export const tokenSha256 = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

/**
 * Keeps the read models in step with the user streams. Runs inside the append's transaction, so
 * the read models change if and only if the events commit; a unique index refusing a row (an
 * address or username another user took meanwhile) rolls the events back too.
 *
 * Link tokens travel sealed in the events; the projection opens each one only to store its
 * SHA-256, which is all accounts keeps (a database dump yields no usable link).
 */
/**
 * Kills every unused link that reached someone through this user's address: the user's own
 * verification, set-password and reset links sent to it, and invitations addressed to it because
 * the user held it verified (those were mailed to the user). Called when the address is removed
 * (the only way it can change hands) or loses its verification: whoever reads the mailbox next
 * must not inherit a link, and a link must not outlive the proof it rested on.
 */
async function revokeLinksThrough(tx: Queryable, userId: string, email: string, at: string) {
  await tx.query(
    `UPDATE link_tokens SET revoked_at = $3 WHERE used_at IS NULL AND revoked_at IS NULL AND (
       (user_id = $2 AND email = $1 AND kind <> 'UserInvited')
       OR invitation_id IN (SELECT id FROM invitations WHERE invitee_user_id = $2 AND email = $1))`,
    [email, userId, at],
  );
}

export function createProjection(linkTokenKey: LinkTokenKey) {
  const storeToken = async (
    tx: Queryable,
    event: StoredEvent,
    data: { email: string; token: SealedToken; expiresAt: string; invitationId?: string },
  ) => {
    const raw = openToken(data.token, linkTokenKey, event.streamId, event.type);
    await tx.query(
      `INSERT INTO link_tokens (token_sha256, kind, user_id, email, invitation_id, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        tokenSha256(raw),
        event.type,
        event.streamId,
        data.email,
        data.invitationId ?? null,
        event.time,
        data.expiresAt,
      ],
    );
  };

  /** `version`: the user's version after the whole append, written with the user's new row. */
  async function projectOne(tx: Queryable, stored: StoredEvent, version: number): Promise<void> {
    const event = { type: stored.type, data: stored.data } as AccountsEventData;
    const userId = stored.streamId;
    const at = stored.time;
    // Replaying a deleted user's stream (a rebuild): its personal fields are gone. The user's row is
    // made from what is left, the rest is what `UserDeleted` removes anyway, so the rebuilt rows
    // are the ones the deletion left.
    if (isShredded(stored)) {
      if (event.type === 'UserCreated') await projectShreddedUser(tx, stored, version);
      return;
    }
    switch (event.type) {
      case 'UserCreated': {
        const d = event.data;
        await tx.query(
          `INSERT INTO users (id, username, display_name, origin, auth_provider, external_id, site_admin, primary_email, created_at, version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
          [
            userId,
            d.username,
            d.displayName ?? null,
            d.origin,
            d.authProvider.type,
            d.authProvider.externalId ?? null,
            d.siteAdmin,
            d.email,
            at,
            version,
          ],
        );
        await tx.query(
          'INSERT INTO user_emails (email, user_id, added_at, verified_at) VALUES ($1, $2, $3, $4)',
          [d.email, userId, at, d.emailVerified ? at : null],
        );
        return;
      }
      case 'EmailAdded':
        await tx.query('INSERT INTO user_emails (email, user_id, added_at) VALUES ($1, $2, $3)', [
          event.data.email,
          userId,
          at,
        ]);
        return;
      case 'EmailVerificationRequested':
        await tx.query(
          'UPDATE user_emails SET verification_requested_at = $3 WHERE email = $1 AND user_id = $2',
          [event.data.email, userId, at],
        );
        await storeToken(tx, stored, event.data);
        return;
      case 'EmailVerified':
        await tx.query('UPDATE user_emails SET verified_at = $3 WHERE email = $1 AND user_id = $2', [
          event.data.email,
          userId,
          at,
        ]);
        return;
      case 'EmailUnverified':
        await tx.query('UPDATE user_emails SET verified_at = NULL WHERE email = $1 AND user_id = $2', [
          event.data.email,
          userId,
        ]);
        await revokeLinksThrough(tx, userId, event.data.email, at);
        return;
      case 'EmailRemoved':
        await tx.query('DELETE FROM user_emails WHERE email = $1 AND user_id = $2', [
          event.data.email,
          userId,
        ]);
        await revokeLinksThrough(tx, userId, event.data.email, at);
        return;
      case 'PrimaryEmailChanged':
        await tx.query('UPDATE users SET primary_email = $2 WHERE id = $1', [userId, event.data.email]);
        return;
      case 'PasswordSetLinkRequested':
      case 'PasswordResetRequested':
        await storeToken(tx, stored, event.data);
        return;
      case 'PasswordChanged':
        // The hash itself is written by the command (it is never in an event).
        return;
      case 'ApiKeyCreated': {
        const d = event.data;
        await tx.query(
          `INSERT INTO api_keys (id, user_id, name, secret_sha256, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
          [d.keyId, userId, d.name, d.secretSha256, d.createdBy, at],
        );
        return;
      }
      case 'ApiKeyRevoked':
        await tx.query(
          'UPDATE api_keys SET revoked_at = $3, revoked_by = $4 WHERE id = $1 AND user_id = $2',
          [event.data.keyId, userId, at, event.data.revokedBy],
        );
        return;
      case 'SiteAdminChanged':
        await tx.query('UPDATE users SET site_admin = $2 WHERE id = $1', [userId, event.data.siteAdmin]);
        return;
      case 'UserInvited': {
        const d = event.data;
        await tx.query(
          `INSERT INTO invitations (id, inviter_id, email, organization, invitee_user_id, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)`,
          [d.invitationId, userId, d.email, d.organization ?? null, d.inviteeUserId ?? null, at, d.expiresAt],
        );
        await storeToken(tx, stored, d);
        return;
      }
      case 'UserDeleted':
        await eraseUser(tx, userId, at);
        return;
      default: {
        const unexpected: never = event;
        throw new Error(`no projection for event type ${(unexpected as { type: string }).type}`);
      }
    }
  }

  return async function project(tx: Queryable, events: StoredEvent[]): Promise<void> {
    const last = events.at(-1);
    if (!last) return;
    for (const event of events) await projectOne(tx, event, last.position);
    // The user's row made by this append already holds its version (nothing else writes the column).
    if (events.some((e) => e.type === 'UserCreated')) return;
    await tx.query('UPDATE users SET version = $2 WHERE id = $1', [last.streamId, last.position]);
  };
}

/** The row of a user whose `UserCreated` is shredded: its facts without the personal ones. */
async function projectShreddedUser(tx: Queryable, stored: StoredEvent, version: number) {
  const d = stored.data as { origin: string; authProvider: { type: string }; siteAdmin: boolean };
  await tx.query(
    `INSERT INTO users (id, origin, auth_provider, site_admin, created_at, version)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [stored.streamId, d.origin, d.authProvider.type, d.siteAdmin, stored.time, version],
  );
}

/**
 * What `UserDeleted` leaves in the read models: a tombstone row in `users` with every personal
 * column null (the username and address are free again), and nothing else of the user: addresses
 * (with what notifications said of their deliverability), API keys (they stop at once), password,
 * links, invitations they sent or that named them, the throttle's records of their logins.
 */
async function eraseUser(tx: Queryable, userId: string, at: string) {
  await tx.query(
    `DELETE FROM password_attempts WHERE subject = $2
       OR subject IN (SELECT 'login:' || lower(username) FROM users WHERE id = $1 AND username IS NOT NULL)
       OR subject IN (SELECT 'login:' || email FROM user_emails WHERE user_id = $1)`,
    [userId, `user:${userId}`],
  );
  await tx.query(
    `DELETE FROM link_tokens WHERE user_id = $1
       OR invitation_id IN (SELECT id FROM invitations WHERE inviter_id = $1 OR invitee_user_id = $1)`,
    [userId],
  );
  await tx.query('DELETE FROM invitations WHERE inviter_id = $1 OR invitee_user_id = $1', [userId]);
  await tx.query(
    'DELETE FROM address_deliverability WHERE email IN (SELECT email FROM user_emails WHERE user_id = $1)',
    [userId],
  );
  await tx.query('DELETE FROM user_emails WHERE user_id = $1', [userId]);
  await tx.query('DELETE FROM api_keys WHERE user_id = $1', [userId]);
  await tx.query('DELETE FROM passwords WHERE user_id = $1', [userId]);
  await tx.query(
    `UPDATE users SET username = NULL, display_name = NULL, external_id = NULL, primary_email = NULL,
       site_admin = false, deleted_at = $2 WHERE id = $1`,
    [userId, at],
  );
}
