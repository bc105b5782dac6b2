import { apiKeySecretSha256 } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import type { FastifyRequest } from 'fastify';
import { findApiKeyOwner } from '../store/recipients.ts';

export interface AuthenticatedUser {
  userId: string;
  username: string;
  siteAdmin: boolean;
}

// `token <key>` is what Sourcegraph's clients send, `Bearer <key>` what generic HTTP clients send;
// accounts takes both, so a key that works there works here.
const API_KEY = /^(?:token|bearer)\s+(\S+)\s*$/i;

/**
 * Authenticates `Authorization: token <key>` (or `Bearer <key>`) against the API keys projected from accounts events
 * (SHA-256 of the secret, not revoked) and the user's site-admin flag: no call to accounts per
 * request. Null for a missing, malformed, unknown or revoked key. The key never reaches a log.
 */
export function apiKeyAuthenticator(
  db: Queryable,
): (request: FastifyRequest) => Promise<AuthenticatedUser | null> {
  return async (request) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string') return null;
    const m = API_KEY.exec(header);
    if (!m) return null;
    const owner = await findApiKeyOwner(db, apiKeySecretSha256(m[1]!));
    return owner ?? null;
  };
}
