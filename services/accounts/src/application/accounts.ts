import { randomUUID } from 'node:crypto';
import { apiKeySecretSha256, type LinkTokenKey, sealToken } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import { type EventStore, type StoredEvent, StreamVersionConflictError } from '@sitemail/event-store';
import { builtinAuthEnabled, type SiteConfigSource, smtpConfigured } from '@sitemail/site-config';
import {
  decide,
  foldUser,
  isRefusal,
  passwordResetUnavailable,
  type Sealer,
  type SitePolicy,
  type UserCommand,
  type UserEvent,
} from '../domain/user/index.ts';
import { createProjection, tokenSha256 } from '../store/projection.ts';
import { createQueries, type InvitationView, type UserView } from '../store/queries.ts';
import { AccountsError, RefusalError } from './errors.ts';
import { DEFAULT_SCRYPT_COST, hashPassword, type ScryptCost, verifyPassword } from './passwords.ts';
import { API_KEY_PATTERN, newApiKeySecret, newLinkToken } from './secrets.ts';

export interface AccountsDeps {
  db: Database;
  eventStore: EventStore;
  siteConfig: SiteConfigSource;
  linkTokenKey: LinkTokenKey;
  clock?: () => Date;
  passwordCost?: ScryptCost;
}

/** Who is calling, as established by `Authorization`. */
export interface Principal {
  userId: string;
  username: string;
  siteAdmin: boolean;
  via: 'api-key' | 'password';
}

/** Options of one command run. */
interface RunOptions {
  /** The version the caller last saw (`If-Match`): a different current version is a 409, not a retry. */
  expectedVersion?: number | undefined;
  /** More writes in the append's transaction (password hashes, used links), after the projection. */
  alsoWrite?: (tx: Queryable, events: StoredEvent[]) => Promise<void>;
  /** When the command decides no events, still commit `alsoWrite` (consuming a link, say). */
  writeWhenNoEvents?: boolean;
}

// Each lost race means another command on the user committed, so N concurrent commands need at most N attempts.
const MAX_ATTEMPTS = 8;

const uniqueViolation = (err: unknown): string | null => {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown } | null;
  if (e?.code !== '23505') return null;
  if (typeof e.constraint === 'string') return e.constraint;
  const m = /constraint "([^"]+)"/.exec(String(e.message));
  return m?.[1] ?? 'unknown';
};

/** A unique index of the read model refused the append: another user took the name or address first. */
function conflictFromIndex(constraint: string, input: { username?: string; email?: string }): AccountsError {
  if (constraint.startsWith('users_username')) {
    return new AccountsError('username-taken', `the username "${input.username ?? ''}" is taken`, 'username');
  }
  if (constraint.startsWith('user_emails')) {
    return new AccountsError(
      'email-taken',
      `the address ${input.email ?? ''} belongs to another user`,
      'email',
    );
  }
  if (constraint.startsWith('users_external_account')) {
    return new AccountsError(
      'external-account-exists',
      'a user already exists for this external account',
      'externalId',
    );
  }
  return new AccountsError('conflict', 'the request conflicts with a concurrent change; retry it');
}

const toUserEvent = (e: StoredEvent): UserEvent =>
  ({ type: e.type, data: e.data, userId: e.streamId, time: e.time }) as UserEvent;

const invalidLink = () =>
  new AccountsError('invalid-link', 'this link is invalid, already used or expired', 'code');

/**
 * The command side of accounts: loads a user's stream, decides, appends with the projection in
 * the same transaction. Cross-user rules (unique usernames and addresses, the first user) are
 * checked against the read model first for a clear answer, and enforced by its unique indexes.
 */
export function createAccounts(deps: AccountsDeps) {
  const { db, eventStore, linkTokenKey } = deps;
  const clock = deps.clock ?? (() => new Date());
  const passwordCost = deps.passwordCost ?? DEFAULT_SCRYPT_COST;
  const project = createProjection(linkTokenKey);
  const queries = createQueries(db);
  let decoyHash: Promise<string> | undefined;
  const decoy = () => {
    decoyHash ??= hashPassword(newLinkToken(), passwordCost);
    return decoyHash;
  };

  const site = (): SitePolicy => {
    const config = deps.siteConfig.current();
    return { smtpConfigured: smtpConfigured(config), builtinAuth: builtinAuthEnabled(config) };
  };
  const sealerFor =
    (userId: string): Sealer =>
    (type) =>
      sealToken(newLinkToken(), linkTokenKey, userId, type);

  async function run(
    userId: string,
    command: () => Promise<UserCommand> | UserCommand,
    options: RunOptions = {},
  ): Promise<StoredEvent[]> {
    for (let attempt = 1; ; attempt++) {
      const history = await eventStore.readStream(userId);
      const version = history.at(-1)?.position ?? 0;
      if (options.expectedVersion !== undefined && options.expectedVersion !== version) {
        throw new AccountsError(
          'stale-version',
          `the user is at version ${version}, not ${options.expectedVersion}: reload and retry`,
          'If-Match',
        );
      }
      const cmd = await command();
      const decision = decide(cmd, foldUser(history.map(toUserEvent)));
      if (isRefusal(decision)) throw new RefusalError(decision);
      if (decision.length === 0) {
        const also = options.alsoWrite;
        if (options.writeWhenNoEvents && also) await db.transaction((tx) => also(tx, []));
        return [];
      }
      try {
        return await eventStore.append(userId, version, decision, {
          now: cmd.now,
          project: async (tx, events) => {
            await project(tx, events);
            await options.alsoWrite?.(tx, events);
          },
        });
      } catch (err) {
        // Another command on this user won the race: decide again on the new state, unless the
        // caller pinned the version it saw.
        const retryable =
          (err instanceof StreamVersionConflictError && options.expectedVersion === undefined) ||
          uniqueViolation(err) === 'site_bootstrap_pkey';
        if (retryable && attempt < MAX_ATTEMPTS) continue;
        if (err instanceof StreamVersionConflictError) {
          throw new AccountsError(
            'stale-version',
            'the user was changed concurrently: reload and retry',
            'If-Match',
          );
        }
        throw err;
      }
    }
  }

  async function mustGetUser(userId: string): Promise<UserView> {
    const user = await queries.user(userId);
    if (!user) throw new AccountsError('not-found', 'user not found', 'userId');
    return user;
  }

  /** Checks a new user's name and address against the read model, for a clear 409 before deciding. */
  async function assertAvailable(username: string, email: string) {
    if (await queries.userIdByUsername(username)) {
      throw new AccountsError('username-taken', `the username "${username}" is taken`, 'username');
    }
    if (await queries.emailOwner(email)) {
      throw new AccountsError('email-taken', `the address ${email} belongs to another user`, 'email');
    }
  }

  async function createUser(
    input: {
      username: string;
      email: string;
      displayName?: string | undefined;
      origin: 'builtin-signup' | 'site-admin' | 'external-provider' | 'api';
      authProvider: { type: string; externalId?: string };
      password?: string;
      invitation?: { tokenSha256: string; invitationId: string | null };
    },
    options: RunOptions = {},
  ): Promise<{ user: UserView; events: StoredEvent[] }> {
    await assertAvailable(input.username, input.email);
    const userId = randomUUID();
    const passwordHash =
      input.password === undefined ? undefined : await hashPassword(input.password, passwordCost);
    let firstUser = false;
    try {
      const events = await run(
        userId,
        async () => {
          firstUser = !(await queries.anyUser());
          return {
            type: 'CreateUser',
            userId,
            username: input.username,
            ...(input.displayName === undefined ? {} : { displayName: input.displayName }),
            email: input.email,
            origin: input.origin,
            authProvider: input.authProvider,
            withPassword: passwordHash !== undefined,
            firstUser,
            emailProvenByInvitation: input.invitation !== undefined,
            site: site(),
            seal: sealerFor(userId),
            now: clock(),
          };
        },
        {
          ...options,
          alsoWrite: async (tx, events) => {
            const at = events[0]?.time ?? clock().toISOString();
            if (firstUser) await tx.query('INSERT INTO site_bootstrap (first_user_id) VALUES ($1)', [userId]);
            if (passwordHash !== undefined) {
              await tx.query('INSERT INTO passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)', [
                userId,
                passwordHash,
                at,
              ]);
            }
            // Using the invitation's link is what accepting it means (its side-table row says when).
            if (input.invitation) await useLink(tx, input.invitation.tokenSha256, at);
          },
        },
      );
      return { user: await mustGetUser(userId), events };
    } catch (err) {
      const constraint = uniqueViolation(err);
      if (constraint) throw conflictFromIndex(constraint, input);
      throw err;
    }
  }

  /** Marks a link used, in the transaction of what it does; a concurrent use of the same link fails. */
  async function useLink(tx: Queryable, sha256: string, at: string) {
    const used = await tx.query(
      'UPDATE link_tokens SET used_at = $2 WHERE token_sha256 = $1 AND used_at IS NULL AND expires_at > $2',
      [sha256, at],
    );
    if (used.rowCount !== 1) throw invalidLink();
  }

  /** Finds a link by its code, or says it is invalid (unknown, of another kind, used, expired). */
  async function openLink(code: string, kinds: string[], email?: string) {
    const sha256 = tokenSha256(code);
    const link = await queries.linkToken(sha256);
    if (!link || !kinds.includes(link.kind) || link.used || Date.parse(link.expiresAt) <= clock().getTime()) {
      throw invalidLink();
    }
    if (email !== undefined && link.email !== email) throw invalidLink();
    return { ...link, sha256 };
  }

  /** Runs a command that changes an address the user has, mapping a unique index to a 409. */
  async function runOnEmail(
    userId: string,
    email: string,
    command: () => UserCommand,
    options: RunOptions = {},
  ) {
    await mustGetUser(userId);
    try {
      return await run(userId, command, options);
    } catch (err) {
      const constraint = uniqueViolation(err);
      if (constraint) throw conflictFromIndex(constraint, { email });
      throw err;
    }
  }

  return {
    queries,
    site,

    /** Builtin sign-up: the first user becomes site admin. */
    async signUp(input: {
      username: string;
      email: string;
      password: string;
      displayName?: string | undefined;
      invitationCode?: string | undefined;
    }) {
      let invitation: { tokenSha256: string; invitationId: string | null } | undefined;
      if (input.invitationCode !== undefined) {
        const link = await openLink(input.invitationCode, ['UserInvited'], input.email);
        invitation = { tokenSha256: link.sha256, invitationId: link.invitationId };
      }
      return createUser({
        username: input.username,
        email: input.email,
        displayName: input.displayName,
        origin: 'builtin-signup',
        authProvider: { type: 'builtin' },
        password: input.password,
        ...(invitation ? { invitation } : {}),
      });
    },

    /** A site admin creates a user: through the admin UI flow (a set-password link) or as an API client (verified). */
    async createUserByAdmin(input: {
      username: string;
      email: string;
      displayName?: string | undefined;
      origin: 'site-admin' | 'api';
    }) {
      return createUser({ ...input, authProvider: { type: 'builtin' } });
    },

    /**
     * A user signing in through an external provider, as a trusted auth gateway reports it:
     * created (verified) the first time, returned as is afterwards.
     */
    async upsertExternalUser(input: {
      provider: string;
      externalId: string;
      username: string;
      email: string;
      displayName?: string | undefined;
    }): Promise<{ user: UserView; created: boolean; events: StoredEvent[] }> {
      const existing = await queries.externalAccount(input.provider, input.externalId);
      if (existing) return { user: await mustGetUser(existing), created: false, events: [] };
      try {
        const { user, events } = await createUser({
          username: input.username,
          email: input.email,
          displayName: input.displayName,
          origin: 'external-provider',
          authProvider: { type: input.provider, externalId: input.externalId },
        });
        return { user, created: true, events };
      } catch (err) {
        // Two sign-ins of the same new account raced: the other one created the user.
        const winner =
          err instanceof AccountsError && err.status === 409
            ? await queries.externalAccount(input.provider, input.externalId)
            : null;
        if (!winner) throw err;
        return { user: await mustGetUser(winner), created: false, events: [] };
      }
    },

    getUser: mustGetUser,

    async addEmail(userId: string, email: string, expectedVersion?: number) {
      const owner = await queries.emailOwner(email);
      if (owner && owner.userId !== userId) {
        throw new AccountsError('email-taken', `the address ${email} belongs to another user`, 'email');
      }
      const events = await runOnEmail(
        userId,
        email,
        () => ({ type: 'AddEmail', email, site: site(), seal: sealerFor(userId), now: clock() }),
        { expectedVersion },
      );
      return { user: await mustGetUser(userId), events };
    },

    async removeEmail(userId: string, email: string, expectedVersion?: number) {
      const events = await runOnEmail(userId, email, () => ({ type: 'RemoveEmail', email, now: clock() }), {
        expectedVersion,
      });
      return { user: await mustGetUser(userId), events };
    },

    async setPrimaryEmail(userId: string, email: string, expectedVersion?: number) {
      const events = await runOnEmail(
        userId,
        email,
        () => ({ type: 'SetPrimaryEmail', email, now: clock() }),
        {
          expectedVersion,
        },
      );
      return { user: await mustGetUser(userId), events };
    },

    async requestEmailVerification(userId: string, email: string) {
      const events = await runOnEmail(userId, email, () => ({
        type: 'RequestEmailVerification',
        email,
        site: site(),
        seal: sealerFor(userId),
        now: clock(),
      }));
      return { user: await mustGetUser(userId), events };
    },

    async setEmailVerified(
      userId: string,
      email: string,
      verified: boolean,
      by: string,
      expectedVersion?: number,
    ) {
      const events = await runOnEmail(
        userId,
        email,
        () => ({ type: 'SetEmailVerified', email, verified, by, now: clock() }),
        { expectedVersion },
      );
      return { user: await mustGetUser(userId), events };
    },

    /** Following a verification link: single use, expiring, for the address it was sent to. */
    async verifyEmailByLink(code: string, email: string) {
      const link = await openLink(code, ['EmailVerificationRequested'], email);
      const events = await runOnEmail(
        link.userId,
        email,
        () => ({ type: 'VerifyEmailByLink', email, now: clock() }),
        {
          alsoWrite: (tx, events) => useLink(tx, link.sha256, events[0]?.time ?? clock().toISOString()),
          writeWhenNoEvents: true,
        },
      );
      return { user: await mustGetUser(link.userId), events };
    },

    /** Describes a password link (for the page the link opens) without using it. */
    async describePasswordLink(code: string) {
      const link = await openLink(code, ['PasswordSetLinkRequested', 'PasswordResetRequested']);
      return {
        kind: link.kind === 'PasswordSetLinkRequested' ? ('set-password' as const) : ('reset' as const),
        email: link.email,
        expiresAt: link.expiresAt,
      };
    },

    /**
     * Following a set-password or reset link with a new password. A set-password link also
     * verifies the address it was sent to. Every other password link of the user dies with it.
     */
    async setPasswordByLink(code: string, password: string) {
      const link = await openLink(code, ['PasswordSetLinkRequested', 'PasswordResetRequested']);
      const hash = await hashPassword(password, passwordCost);
      const via =
        link.kind === 'PasswordSetLinkRequested' ? ('set-password-link' as const) : ('reset-link' as const);
      const events = await run(
        link.userId,
        () => ({ type: 'SetPasswordByLink', via, email: link.email, site: site(), now: clock() }),
        {
          alsoWrite: async (tx, events) => {
            const at = events[0]?.time ?? clock().toISOString();
            await useLink(tx, link.sha256, at);
            await tx.query(
              `UPDATE link_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL
               AND kind IN ('PasswordSetLinkRequested', 'PasswordResetRequested')`,
              [link.userId, at],
            );
            await tx.query(
              `INSERT INTO passwords (user_id, hash, updated_at) VALUES ($1, $2, $3)
               ON CONFLICT (user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = EXCLUDED.updated_at`,
              [link.userId, hash, at],
            );
          },
        },
      );
      return { user: await mustGetUser(link.userId), events };
    },

    /** The user changes their own password, proving the current one; outstanding reset links die. */
    async changePassword(userId: string, currentPassword: string, newPassword: string) {
      const { rows } = await db.query<{ hash: string }>('SELECT hash FROM passwords WHERE user_id = $1', [
        userId,
      ]);
      const ok = await verifyPassword(currentPassword, rows[0]?.hash ?? (await decoy()));
      if (!rows[0] || !ok)
        throw new AccountsError('wrong-password', 'the current password is wrong', 'currentPassword');
      const hash = await hashPassword(newPassword, passwordCost);
      const events = await run(userId, () => ({ type: 'ChangePassword', site: site(), now: clock() }), {
        alsoWrite: async (tx, events) => {
          const at = events[0]?.time ?? clock().toISOString();
          await tx.query('UPDATE passwords SET hash = $2, updated_at = $3 WHERE user_id = $1', [
            userId,
            hash,
            at,
          ]);
          await tx.query(
            `UPDATE link_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL
             AND kind IN ('PasswordSetLinkRequested', 'PasswordResetRequested')`,
            [userId, at],
          );
        },
      });
      return { events };
    },

    /**
     * A password reset request. Refused on single-sign-on sites and without SMTP; for an address
     * that is unknown or unverified it does nothing and says the same as on success, so the
     * answer does not tell who has an account.
     */
    async requestPasswordReset(email: string): Promise<{ events: StoredEvent[] }> {
      const policy = site();
      const owner = await queries.emailOwner(email);
      // Refused for everyone alike on a single-sign-on site or without SMTP; otherwise an unknown
      // address gets the same answer as a known one.
      const unavailable = passwordResetUnavailable(policy);
      if (unavailable) throw new RefusalError(unavailable);
      if (!owner) return { events: [] };
      try {
        const events = await run(owner.userId, () => ({
          type: 'RequestPasswordReset',
          email,
          site: policy,
          seal: sealerFor(owner.userId),
          now: clock(),
        }));
        return { events };
      } catch (err) {
        if (err instanceof RefusalError && err.refusal.refusal === 'email-not-verified')
          return { events: [] };
        throw err;
      }
    },

    /** Creates an API key; the secret is in the result once and nowhere else. */
    async createApiKey(userId: string, name: string, by: string) {
      await mustGetUser(userId);
      const keyId = randomUUID();
      const { secret, sha256 } = newApiKeySecret();
      const events = await run(userId, () => ({
        type: 'CreateApiKey',
        keyId,
        name,
        secretSha256: sha256,
        by,
        now: clock(),
      }));
      const key = await queries.apiKey(userId, keyId);
      if (!key) throw new Error('created API key missing from the read model');
      return { key, secret, events };
    },

    async revokeApiKey(userId: string, keyId: string, by: string) {
      await mustGetUser(userId);
      const events = await run(userId, () => ({ type: 'RevokeApiKey', keyId, by, now: clock() }));
      return { events };
    },

    async setSiteAdmin(userId: string, siteAdmin: boolean, by: string, expectedVersion?: number) {
      await mustGetUser(userId);
      const events = await run(userId, () => ({ type: 'SetSiteAdmin', siteAdmin, by, now: clock() }), {
        expectedVersion,
      });
      return { user: await mustGetUser(userId), events };
    },

    /** Invites an address to the instance or to an organization; decided on the inviter's stream. */
    async invite(inviterId: string, email: string, organization?: string) {
      await mustGetUser(inviterId);
      const owner = await queries.emailOwner(email);
      const invitationId = randomUUID();
      const events = await run(inviterId, () => ({
        type: 'InviteUser',
        invitationId,
        email,
        ...(organization === undefined ? {} : { organization }),
        ...(owner && owner.userId !== inviterId ? { inviteeUserId: owner.userId } : {}),
        seal: sealerFor(inviterId),
        now: clock(),
      }));
      const invitation = await queries.invitation(invitationId);
      if (!invitation) throw new Error('created invitation missing from the read model');
      return { invitation, events };
    },

    /** What an invitation link shows, without using it (sign-up with the code uses it). */
    async describeInvitation(code: string, email: string): Promise<InvitationView> {
      const link = await openLink(code, ['UserInvited'], email);
      const invitation = link.invitationId ? await queries.invitation(link.invitationId) : null;
      if (!invitation) throw invalidLink();
      return invitation;
    },

    async authenticateKey(secret: string): Promise<Principal | null> {
      if (!API_KEY_PATTERN.test(secret)) return null;
      const row = await queries.principalByKeyHash(apiKeySecretSha256(secret));
      return row
        ? { userId: row.id, username: row.username, siteAdmin: row.site_admin, via: 'api-key' }
        : null;
    },

    /** Username or address + password. Unknown users cost a hash check too, so timing tells nothing. */
    async authenticatePassword(login: string, password: string): Promise<Principal | null> {
      const row = await queries.passwordLogin(login);
      const ok = await verifyPassword(password, row?.hash ?? (await decoy()));
      return row?.hash && ok
        ? { userId: row.id, username: row.username, siteAdmin: row.site_admin, via: 'password' }
        : null;
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
