import { randomUUID } from 'node:crypto';
import type { AccountsContext } from '../context.ts';
import { newApiKeySecret } from '../secrets.ts';

/** API keys: the secret is in the creation result once and nowhere else (events hold its SHA-256). */
export function apiKeyUseCases(ctx: AccountsContext) {
  return {
    async createApiKey(userId: string, name: string, by: string) {
      await ctx.getUser(userId);
      const keyId = randomUUID();
      const { secret, sha256 } = newApiKeySecret();
      const events = await ctx.run(userId, () => ({
        type: 'CreateApiKey',
        keyId,
        name,
        secretSha256: sha256,
        by,
        now: ctx.clock(),
      }));
      const key = await ctx.queries.apiKey(userId, keyId);
      if (!key) throw new Error('created API key missing from the read model');
      return { key, secret, events };
    },

    async revokeApiKey(userId: string, keyId: string, by: string) {
      await ctx.getUser(userId);
      const events = await ctx.run(userId, () => ({ type: 'RevokeApiKey', keyId, by, now: ctx.clock() }));
      return { events };
    },
  };
}
