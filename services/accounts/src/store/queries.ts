import type { UserOrigin } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import { type Undeliverable, undeliverableFrom } from './deliverability.ts';

export interface EmailView {
  email: string;
  verified: boolean;
  primary: boolean;
  verifiedAt: string | null;
  verificationRequestedAt: string | null;
  /** What notifications told the fleet: null unless a final reply said the mailbox does not exist. */
  deliverability: Undeliverable | null;
}

export interface UserView {
  id: string;
  username: string;
  displayName: string | null;
  siteAdmin: boolean;
  origin: UserOrigin;
  authProvider: { type: string; externalId: string | null };
  primaryEmail: string;
  emails: EmailView[];
  hasPassword: boolean;
  createdAt: string;
  /** Position of the user's last event: send it back in `If-Match` to refuse a stale write. */
  version: number;
}

export interface ApiKeyView {
  id: string;
  name: string;
  createdAt: string;
  createdBy: string;
  revokedAt: string | null;
}

export interface InvitationView {
  id: string;
  email: string;
  organization: string | null;
  inviterId: string;
  inviterUsername: string;
  inviteeUserId: string | null;
  createdAt: string;
  expiresAt: string;
  acceptedAt: string | null;
}

const iso = (v: unknown): string => (v instanceof Date ? v : new Date(String(v))).toISOString();
const isoOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : iso(v));

interface UserRow {
  id: string;
  username: string;
  display_name: string | null;
  site_admin: boolean;
  origin: UserOrigin;
  auth_provider: string;
  external_id: string | null;
  primary_email: string;
  created_at: Date;
  version: number;
  has_password: boolean;
}

/** A row of `user()`: the user's columns, one address (null when the user has none) and its deliverability. */
interface UserEmailRow extends UserRow {
  email: string | null;
  verified_at: Date | null;
  verification_requested_at: Date | null;
  d_since: Date | string | null;
  d_cause: string | null;
  d_reply_code: number | null;
  d_enhanced_status: string | null;
  d_reply_text: string | null;
}

/** Reads of the read models. Every view is built from projection tables, never from a stream. */
export function createQueries(db: Queryable) {
  // One statement (one round trip, one snapshot): the user's row once per address, oldest first,
  // with what notifications said of each address when it is undeliverable.
  async function user(id: string): Promise<UserView | null> {
    const { rows } = await db.query<UserEmailRow>(
      `SELECT u.id, u.username, u.display_name, u.site_admin, u.origin, u.auth_provider, u.external_id,
         u.primary_email, u.created_at, u.version,
         EXISTS (SELECT 1 FROM passwords p WHERE p.user_id = u.id) AS has_password,
         e.email, e.verified_at, e.verification_requested_at,
         d.since AS d_since, d.cause AS d_cause, d.reply_code AS d_reply_code,
         d.enhanced_status AS d_enhanced_status, d.reply_text AS d_reply_text
       FROM users u
       LEFT JOIN user_emails e ON e.user_id = u.id
       LEFT JOIN address_deliverability d ON d.email = e.email AND d.status = 'undeliverable'
       WHERE u.id = $1 AND u.deleted_at IS NULL
       ORDER BY e.added_at, e.email`,
      [id],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      id: row.id,
      username: row.username,
      displayName: row.display_name,
      siteAdmin: row.site_admin,
      origin: row.origin,
      authProvider: { type: row.auth_provider, externalId: row.external_id },
      primaryEmail: row.primary_email,
      emails: rows
        .filter((e): e is UserEmailRow & { email: string } => e.email !== null)
        .map((e) => ({
          email: e.email,
          verified: e.verified_at !== null,
          primary: e.email === row.primary_email,
          verifiedAt: isoOrNull(e.verified_at),
          verificationRequestedAt: isoOrNull(e.verification_requested_at),
          deliverability:
            e.d_since === null
              ? null
              : undeliverableFrom({
                  since: e.d_since,
                  cause: e.d_cause as Undeliverable['cause'],
                  reply_code: e.d_reply_code,
                  enhanced_status: e.d_enhanced_status,
                  reply_text: e.d_reply_text ?? '',
                }),
        })),
      hasPassword: row.has_password,
      createdAt: iso(row.created_at),
      version: Number(row.version),
    };
  }

  return {
    user,

    async userIdByUsername(username: string): Promise<string | null> {
      const { rows } = await db.query<{ id: string }>(
        'SELECT id FROM users WHERE lower(username) = lower($1)',
        [username],
      );
      return rows[0]?.id ?? null;
    },

    async emailOwner(email: string): Promise<{ userId: string; verified: boolean } | null> {
      const { rows } = await db.query<{ user_id: string; verified_at: Date | null }>(
        'SELECT user_id, verified_at FROM user_emails WHERE email = $1',
        [email],
      );
      const row = rows[0];
      return row ? { userId: row.user_id, verified: row.verified_at !== null } : null;
    },

    async externalAccount(provider: string, externalId: string): Promise<string | null> {
      const { rows } = await db.query<{ id: string }>(
        'SELECT id FROM users WHERE auth_provider = $1 AND external_id = $2',
        [provider, externalId],
      );
      return rows[0]?.id ?? null;
    },

    /** Site admins other than `userId` that are not deleted (the last one cannot be deleted). */
    async otherSiteAdmins(userId: string): Promise<number> {
      const { rows } = await db.query<{ n: number | string }>(
        'SELECT count(*) AS n FROM users WHERE site_admin AND deleted_at IS NULL AND id <> $1',
        [userId],
      );
      return Number(rows[0]?.n ?? 0);
    },

    /**
     * What creating a user checks first, in one round trip: whether the username (any case) and
     * the address are taken, and whether the site has any user yet (the first one is site admin).
     */
    async newUserChecks(
      username: string,
      email: string,
    ): Promise<{ usernameTaken: boolean; emailTaken: boolean; anyUser: boolean }> {
      const { rows } = await db.query<{ username_taken: boolean; email_taken: boolean; any: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM users WHERE lower(username) = lower($1)) AS username_taken,
           EXISTS (SELECT 1 FROM user_emails WHERE email = $2) AS email_taken,
           EXISTS (SELECT 1 FROM users) AS any`,
        [username, email],
      );
      const row = rows[0];
      return {
        usernameTaken: row?.username_taken === true,
        emailTaken: row?.email_taken === true,
        anyUser: row?.any === true,
      };
    },

    async anyUser(): Promise<boolean> {
      const { rows } = await db.query<{ any: boolean }>('SELECT EXISTS (SELECT 1 FROM users) AS any');
      return rows[0]?.any === true;
    },

    async apiKeys(userId: string): Promise<ApiKeyView[]> {
      const { rows } = await db.query<{
        id: string;
        name: string;
        created_at: Date;
        created_by: string;
        revoked_at: Date | null;
      }>(
        'SELECT id, name, created_at, created_by, revoked_at FROM api_keys WHERE user_id = $1 ORDER BY created_at, name',
        [userId],
      );
      return rows.map((k) => ({
        id: k.id,
        name: k.name,
        createdAt: iso(k.created_at),
        createdBy: k.created_by,
        revokedAt: isoOrNull(k.revoked_at),
      }));
    },

    async apiKey(userId: string, keyId: string): Promise<ApiKeyView | null> {
      const keys = await this.apiKeys(userId);
      return keys.find((k) => k.id === keyId) ?? null;
    },

    /** The stored hash of the user's password, null when they have none. */
    async passwordHash(userId: string): Promise<string | null> {
      const { rows } = await db.query<{ hash: string }>('SELECT hash FROM passwords WHERE user_id = $1', [
        userId,
      ]);
      return rows[0]?.hash ?? null;
    },

    async principalByKeyHash(sha256: string) {
      const { rows } = await db.query<{ id: string; username: string; site_admin: boolean; key_id: string }>(
        `SELECT u.id, u.username, u.site_admin, k.id AS key_id FROM api_keys k JOIN users u ON u.id = k.user_id
         WHERE k.secret_sha256 = $1 AND k.revoked_at IS NULL`,
        [sha256],
      );
      return rows[0] ?? null;
    },

    async passwordLogin(login: string) {
      const { rows } = await db.query<{
        id: string;
        username: string;
        site_admin: boolean;
        hash: string | null;
      }>(
        `SELECT u.id, u.username, u.site_admin, p.hash FROM users u LEFT JOIN passwords p ON p.user_id = u.id
         WHERE lower(u.username) = lower($1) OR u.id = (SELECT user_id FROM user_emails WHERE email = lower($1))
         LIMIT 1`,
        [login],
      );
      return rows[0] ?? null;
    },

    async linkToken(sha256: string) {
      const { rows } = await db.query<{
        kind: string;
        user_id: string;
        email: string;
        invitation_id: string | null;
        expires_at: Date;
        used_at: Date | null;
        revoked_at: Date | null;
        invitee_user_id: string | null;
      }>(
        `SELECT t.kind, t.user_id, t.email, t.invitation_id, t.expires_at, t.used_at, t.revoked_at, i.invitee_user_id
         FROM link_tokens t LEFT JOIN invitations i ON i.id = t.invitation_id WHERE t.token_sha256 = $1`,
        [sha256],
      );
      const row = rows[0];
      return row
        ? {
            kind: row.kind,
            userId: row.user_id,
            email: row.email,
            invitationId: row.invitation_id,
            expiresAt: iso(row.expires_at),
            used: row.used_at !== null,
            revoked: row.revoked_at !== null,
            /** For an invitation: the user it was mailed to (their primary address), null when mailed to the invited address. */
            inviteeUserId: row.invitee_user_id,
          }
        : null;
    },

    async invitation(id: string): Promise<InvitationView | null> {
      const { rows } = await db.query<{
        id: string;
        email: string;
        organization: string | null;
        inviter_id: string;
        inviter_username: string;
        invitee_user_id: string | null;
        created_at: Date;
        expires_at: Date;
        accepted_at: Date | null;
      }>(
        `SELECT i.*, u.username AS inviter_username,
           (SELECT t.used_at FROM link_tokens t WHERE t.invitation_id = i.id) AS accepted_at
         FROM invitations i JOIN users u ON u.id = i.inviter_id WHERE i.id = $1`,
        [id],
      );
      const row = rows[0];
      if (!row) return null;
      return {
        id: row.id,
        email: row.email,
        organization: row.organization,
        inviterId: row.inviter_id,
        inviterUsername: row.inviter_username,
        inviteeUserId: row.invitee_user_id,
        createdAt: iso(row.created_at),
        expiresAt: iso(row.expires_at),
        acceptedAt: isoOrNull(row.accepted_at),
      };
    },
  };
}

export type Queries = ReturnType<typeof createQueries>;
