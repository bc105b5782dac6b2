import { apiKeySecretSha256 } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import type { FastifyRequest } from 'fastify';
import { findApiKeyOwner } from '../store/recipients.ts';

export interface AuthenticatedUser {
  userId: string;
  username: string;
  siteAdmin: boolean;
}

const TOKEN = /^token\s+(\S+)\s*$/i;

/**
 * Authenticates `Authorization: token <key>` against the API keys projected from accounts events
 * (SHA-256 of the secret, not revoked) and the user's site-admin flag: no call to accounts per
 * request. Null for a missing, malformed, unknown or revoked key. The key never reaches a log.
 */
export function apiKeyAuthenticator(
  db: Queryable,
): (request: FastifyRequest) => Promise<AuthenticatedUser | null> {
  return async (request) => {
    const header = request.headers.authorization;
    if (typeof header !== 'string') return null;
    const m = TOKEN.exec(header);
    if (!m) return null;
    const owner = await findApiKeyOwner(db, apiKeySecretSha256(m[1]!));
    return owner ?? null;
  };
}
