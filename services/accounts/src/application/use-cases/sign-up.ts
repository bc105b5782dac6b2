import { randomUUID } from 'node:crypto';
import type { UserOrigin } from '@sitemail/contracts';
import type { StoredEvent } from '@sitemail/event-store';
import type { UserView } from '../../store/queries.ts';
import { recordFirstUser, savePasswordHash } from '../../store/side-tables.ts';
import { violatedUniqueRule } from '../../store/unique-violations.ts';
import type { AccountsContext } from '../context.ts';
import { AccountsError, emailTaken, uniqueConflict, usernameTaken } from '../errors.ts';
import { openLink, useLinkOnce } from '../links.ts';
import { hashPassword } from '../passwords.ts';

interface NewUser {
  username: string;
  email: string;
  displayName?: string | undefined;
  origin: UserOrigin;
  authProvider: { type: string; externalId?: string };
  password?: string;
  invitation?: { tokenSha256: string; email: string; mailedToInvitedAddress: boolean };
}

/**
 * Creating users: builtin sign-up, by a site admin, through an external provider. Cross-user
 * rules (unique usernames and addresses, the first user) are checked against the read model
 * first for a clear answer, and enforced by its unique indexes.
 */
export function signUpUseCases(ctx: AccountsContext) {
  async function createUser(input: NewUser): Promise<{ user: UserView; events: StoredEvent[] }> {
    const checks = await ctx.queries.newUserChecks(input.username, input.email);
    if (checks.usernameTaken) throw usernameTaken(input.username);
    if (checks.emailTaken) throw emailTaken(input.email);
    // The first attempt decides on what the checks read; a retry (the first-user row was taken
    // meanwhile by a concurrent sign-up) reads it afresh.
    let anyUserRead: boolean | undefined = checks.anyUser;
    const userId = randomUUID();
    const passwordHash =
      input.password === undefined ? undefined : await hashPassword(input.password, ctx.passwordCost);
    let firstUser = false;
    try {
      const events = await ctx.run(
        userId,
        async () => {
          firstUser = !(anyUserRead ?? (await ctx.queries.anyUser()));
          anyUserRead = undefined;
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
            ...(input.invitation
              ? {
                  invitation: {
                    email: input.invitation.email,
                    mailedToInvitedAddress: input.invitation.mailedToInvitedAddress,
                  },
                }
              : {}),
            site: ctx.site(),
            seal: ctx.sealerFor(userId),
            now: ctx.clock(),
          };
        },
        {
          // A fresh random id: no stream to read (a clash would be a version conflict, then read).
          newStream: true,
          alsoWrite: async (tx, events) => {
            const at = events[0]?.time ?? ctx.clock().toISOString();
            if (firstUser) await recordFirstUser(tx, userId);
            if (passwordHash !== undefined) await savePasswordHash(tx, userId, passwordHash, at);
            // Using the invitation's link is what accepting it means (its side-table row says when).
            if (input.invitation) await useLinkOnce(tx, input.invitation.tokenSha256, at);
          },
        },
      );
      return { user: await ctx.getUser(userId), events };
    } catch (err) {
      const rule = violatedUniqueRule(err);
      if (rule) throw uniqueConflict(rule, input);
      throw err;
    }
  }

  return {
    /** Builtin sign-up: the first user becomes site admin. */
    async signUp(input: {
      username: string;
      email: string;
      password: string;
      displayName?: string | undefined;
      invitationCode?: string | undefined;
    }) {
      let invitation: NewUser['invitation'];
      if (input.invitationCode !== undefined) {
        const link = await openLink(ctx, input.invitationCode, ['UserInvited'], input.email);
        // An invitation naming an existing user was mailed to that user's primary address, not
        // to this one: using its code then proves nothing of this address (see create-user.ts).
        invitation = {
          tokenSha256: link.sha256,
          email: link.email,
          mailedToInvitedAddress: link.inviteeUserId === null,
        };
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
      const existing = await ctx.queries.externalAccount(input.provider, input.externalId);
      if (existing) return { user: await ctx.getUser(existing), created: false, events: [] };
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
            ? await ctx.queries.externalAccount(input.provider, input.externalId)
            : null;
        if (!winner) throw err;
        return { user: await ctx.getUser(winner), created: false, events: [] };
      }
    },
  };
}
