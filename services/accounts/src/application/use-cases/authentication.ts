import { apiKeySecretSha256, parseEmailAddress } from '@sitemail/contracts';
import type { AccountsContext } from '../context.ts';
import { checkPasswordGuarded } from '../password-guard.ts';
import { verifyPassword } from '../passwords.ts';
import { API_KEY_PATTERN } from '../secrets.ts';

/** Who is calling, as established by `Authorization`. */
export interface Principal {
  userId: string;
  username: string;
  siteAdmin: boolean;
  via: 'api-key' | 'password';
}

/** Who a credential belongs to: null for a wrong, unknown or revoked one (the HTTP layer says 401). */
export function authenticationUseCases(ctx: AccountsContext) {
  return {
    async authenticateKey(secret: string): Promise<Principal | null> {
      if (!API_KEY_PATTERN.test(secret)) return null;
      const row = await ctx.queries.principalByKeyHash(apiKeySecretSha256(secret));
      return row
        ? { userId: row.id, username: row.username, siteAdmin: row.site_admin, via: 'api-key' }
        : null;
    },

    /**
     * Username or address + password, under the per-account throttle (429 while locked). Unknown
     * users cost a hash check too, so timing tells nothing.
     */
    async authenticatePassword(login: string, password: string): Promise<Principal | null> {
      // An address is looked up in its canonical form (an IDN domain typed in Unicode finds its A-labels).
      const parsed = login.includes('@') ? parseEmailAddress(login) : null;
      const row = await ctx.queries.passwordLogin(parsed?.ok ? parsed.address.toLowerCase() : login);
      const subject = row ? `user:${row.id}` : `login:${login.toLowerCase()}`;
      const ok = await checkPasswordGuarded(ctx, subject, async () =>
        verifyPassword(password, row?.hash ?? (await ctx.decoyHash())),
      );
      return row?.hash && ok
        ? { userId: row.id, username: row.username, siteAdmin: row.site_admin, via: 'password' }
        : null;
    },
  };
}
