import type { AccountsContext } from '../context.ts';

/** Reads for the HTTP layer: the read models and the site policy, never a stream. */
export function queryUseCases(ctx: AccountsContext) {
  return {
    queries: ctx.queries,
    site: ctx.site,
    getUser: ctx.getUser,
  };
}
