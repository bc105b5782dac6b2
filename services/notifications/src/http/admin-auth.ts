import { apiKeySecretSha256 } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import { parseAuthorization } from '@sitemail/service-kit';
import type { FastifyRequest } from 'fastify';
import { findApiKeyOwner } from '../store/recipients.ts';

export interface AuthenticatedUser {
  userId: string;
  username: string;
  siteAdmin: boolean;
}

/**
 * Authenticates `Authorization: token <key>` or `Bearer <key>` (the service kit's parser, as accounts
 * does, so a key that works there works here) against the API keys projected from accounts events
 * (SHA-256 of the secret, not revoked) and the user's site-admin flag: no call to accounts per
 * request. Null for a missing, malformed, unknown or revoked key, or another scheme (notifications
 * takes no passwords). The key never reaches a log.
 */
export function apiKeyAuthenticator(
  db: Queryable,
): (request: FastifyRequest) => Promise<AuthenticatedUser | null> {
  return async (request) => {
    const auth = parseAuthorization(request.headers.authorization);
    if (auth.kind !== 'apiKey') return null;
    const owner = await findApiKeyOwner(db, apiKeySecretSha256(auth.key));
    return owner ?? null;
  };
}
