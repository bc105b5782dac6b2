import type { Queryable } from '@sitemail/db';
import type { LinkEventType } from '../domain/user/index.ts';
import { tokenSha256 } from '../store/projection.ts';
import { useLink } from '../store/side-tables.ts';
import type { AccountsContext } from './context.ts';
import { invalidLink } from './errors.ts';

/**
 * Finds a link by its code, or says it is invalid (unknown, of another kind, used, revoked because
 * the address it went through was removed or lost its verification, expired, for another address).
 */
export async function openLink(ctx: AccountsContext, code: string, kinds: LinkEventType[], email?: string) {
  const sha256 = tokenSha256(code);
  const link = await ctx.queries.linkToken(sha256);
  if (
    !link ||
    !(kinds as string[]).includes(link.kind) ||
    link.used ||
    link.revoked ||
    Date.parse(link.expiresAt) <= ctx.clock().getTime()
  ) {
    throw invalidLink();
  }
  if (email !== undefined && link.email !== email) throw invalidLink();
  return { ...link, sha256 };
}

/** Uses a link in the transaction of what it does; a concurrent use of the same link makes that fail. */
export async function useLinkOnce(tx: Queryable, sha256: string, at: string): Promise<void> {
  if (!(await useLink(tx, sha256, at))) throw invalidLink();
}
