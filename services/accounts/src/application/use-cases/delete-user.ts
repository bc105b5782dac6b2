import type { DeleteUser } from '../../domain/user/index.ts';
import { refuse } from '../../domain/user/index.ts';
import { siteAdminsLeftAfterDeletion } from '../../store/side-tables.ts';
import type { AccountsContext } from '../context.ts';
import { refused } from '../errors.ts';
import { checkPasswordGuarded } from '../password-guard.ts';
import { verifyPassword } from '../passwords.ts';
import type { Principal } from './authentication.ts';

/**
 * Deleting a user for real: by the user themself, re-confirming with their password (a user
 * without one, from an external provider, proves it with their own key, which the request came
 * with), or by a site admin. The append of `UserDeleted` destroys the user's data key and erases
 * the read models in its transaction (store/personal-data.ts, store/projection.ts).
 */
export function deleteUserUseCases(ctx: AccountsContext) {
  return {
    async deleteUser(userId: string, by: Principal, password?: string, expectedVersion?: number) {
      const self = by.userId === userId;
      let credential: DeleteUser['credential'] = self || by.siteAdmin ? 'valid' : 'wrong';
      if (self) {
        const hash = await ctx.queries.passwordHash(userId);
        if (hash !== null && password === undefined) credential = 'missing';
        else if (hash !== null && password !== undefined) {
          // The per-account throttle, as on a password change: a stolen key must not guess the password.
          const ok = await checkPasswordGuarded(ctx, `user:${userId}`, () => verifyPassword(password, hash));
          credential = ok ? 'valid' : 'wrong';
        }
      }
      const wasSiteAdmin = (await ctx.queries.user(userId))?.siteAdmin === true;
      const events = await ctx.run(
        userId,
        async () => ({
          type: 'DeleteUser',
          deletedBy: self ? 'self' : 'site-admin',
          credential,
          otherSiteAdmins: await ctx.queries.otherSiteAdmins(userId),
          now: ctx.clock(),
        }),
        {
          expectedVersion,
          alsoWrite: async (tx, appended) => {
            if (!wasSiteAdmin || !appended.some((e) => e.type === 'UserDeleted')) return;
            if ((await siteAdminsLeftAfterDeletion(tx)) === 0) {
              throw refused(
                refuse(
                  'last-site-admin',
                  'the last site admin cannot be deleted: make another user site admin first',
                ),
              );
            }
          },
        },
      );
      return { events };
    },
  };
}
