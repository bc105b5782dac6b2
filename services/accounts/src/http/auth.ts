import { parseAuthorization } from '@sitemail/service-kit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Accounts, Principal } from '../application/accounts.ts';
import { AccountsError } from '../application/errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller, from `Authorization` (null when anonymous). */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The route accepts `Authorization: Basic` (username or address, and password): obtaining a first key. */
    allowPassword?: boolean;
  }
}

const unauthenticated = (
  detail = 'authentication required: send "Authorization: token <API key>" or "Authorization: Bearer <API key>"',
) => new AccountsError('unauthenticated', detail);

/**
 * Authenticates every request that carries `Authorization`: an API key (`token <key>` or
 * `Bearer <key>`, looked up by its SHA-256) everywhere, `Basic` only on routes that allow a
 * password. Wrong credentials are a 401 even on routes that do not need any, so a client never
 * silently runs as anonymous.
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { accounts: Accounts }) => {
    app.decorateRequest('principal', null);
    app.addHook('preHandler', async (request) => {
      const auth = parseAuthorization(request.headers.authorization);
      switch (auth.kind) {
        case 'none':
          return;
        case 'apiKey': {
          const principal = await opts.accounts.authenticateKey(auth.key);
          if (!principal) throw unauthenticated('invalid or revoked API key');
          request.principal = principal;
          return;
        }
        case 'basic': {
          if (!request.routeOptions.config.allowPassword) {
            throw unauthenticated(
              'a password is accepted only to create an API key; use "Authorization: token <API key>"',
            );
          }
          const principal = await opts.accounts.authenticatePassword(auth.username, auth.password);
          if (!principal) throw unauthenticated('wrong username or password');
          request.principal = principal;
          return;
        }
        case 'malformed':
          throw unauthenticated(auth.reason);
        case 'unsupported':
          throw unauthenticated(
            'unsupported Authorization scheme; use "token <API key>" or "Bearer <API key>"',
          );
      }
    });
  },
  { name: 'accounts-auth', dependencies: ['service-kit-problems'] },
);

export function requireUser(request: FastifyRequest): Principal {
  if (!request.principal) throw unauthenticated();
  return request.principal;
}

export function requireSiteAdmin(request: FastifyRequest): Principal {
  const principal = requireUser(request);
  if (!principal.siteAdmin) throw new AccountsError('forbidden', 'site admins only');
  return principal;
}

/** Resolves `:userId` (`me` or an id): users act on themselves, site admins on anyone. */
export function targetUser(
  request: FastifyRequest,
  userIdParam: string,
): { principal: Principal; userId: string } {
  const principal = requireUser(request);
  const userId = userIdParam === 'me' ? principal.userId : userIdParam.toLowerCase();
  if (userId !== principal.userId && !principal.siteAdmin) {
    throw new AccountsError('forbidden', "only site admins can act on another user's account");
  }
  return { principal, userId };
}
