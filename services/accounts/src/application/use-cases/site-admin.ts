import type { AccountsContext } from '../context.ts';

/** Making a user site admin or not (the decider refuses an admin changing their own status). */
export function siteAdminUseCases(ctx: AccountsContext) {
  return {
    async setSiteAdmin(userId: string, siteAdmin: boolean, by: string, expectedVersion?: number) {
      await ctx.getUser(userId);
      const events = await ctx.run(
        userId,
        () => ({ type: 'SetSiteAdmin', siteAdmin, by, now: ctx.clock() }),
        {
          expectedVersion,
        },
      );
      return { user: await ctx.getUser(userId), events };
    },
  };
}
