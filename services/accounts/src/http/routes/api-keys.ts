import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { targetUser } from '../auth.ts';
import { checkInput } from '../input.ts';
import { retryAfterHeader } from '../retry-after.ts';
import { ApiKeyName, ApiKeyView, json, problemsFor, UserIdParam } from '../schemas.ts';
import type { RouteOptions } from './options.ts';

/** API keys: the secret is answered once, at creation, and stored only as its SHA-256. */
export const apiKeyRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (
  app,
  { accounts, rateLimits },
) => {
  app.addHook('preValidation', checkInput);
  // A password sign-in refused by the per-account throttle says when to retry.
  app.addHook('onError', retryAfterHeader);
  app.post(
    '/users/:userId/api-keys',
    {
      config: { rateLimit: rateLimits.login, allowPassword: true },
      schema: {
        tags: ['api keys'],
        summary: 'Create an API key; the secret is in this response only',
        description:
          'Authenticate with an API key, or with `Authorization: Basic` (username or address, and password) to ' +
          'obtain your first key. Use the secret as `Authorization: token <secret>`.',
        security: [{ apiKey: [] }, { password: [] }],
        params: Type.Object({ userId: UserIdParam }),
        body: Type.Object({ name: ApiKeyName }, { additionalProperties: false }),
        response: {
          201: json(
            Type.Object({
              key: ApiKeyView,
              secret: Type.String({
                pattern: '^sitemail_[A-Za-z0-9_-]{43}$',
                description: 'Shown once; store it now',
              }),
            }),
            'The key, with its secret',
          ),
          ...problemsFor(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const { principal, userId } = targetUser(request, request.params.userId);
      const { key, secret } = await accounts.createApiKey(userId, request.body.name.trim(), principal.userId);
      return reply.code(201).header('cache-control', 'no-store').send({ key, secret });
    },
  );

  app.get(
    '/users/:userId/api-keys',
    {
      schema: {
        tags: ['api keys'],
        summary: "List a user's API keys (never their secrets)",
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        response: {
          200: json(Type.Object({ keys: Type.Array(ApiKeyView) }), 'Keys, revoked ones included'),
          ...problemsFor(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const { userId } = targetUser(request, request.params.userId);
      await accounts.getUser(userId);
      return { keys: await accounts.queries.apiKeys(userId) };
    },
  );

  app.delete(
    '/users/:userId/api-keys/:keyId',
    {
      schema: {
        tags: ['api keys'],
        summary: 'Revoke an API key',
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam, keyId: Type.String({ format: 'uuid' }) }),
        response: { 204: { description: 'Revoked', type: 'null' }, ...problemsFor(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      const { principal, userId } = targetUser(request, request.params.userId);
      await accounts.revokeApiKey(userId, request.params.keyId.toLowerCase(), principal.userId);
      return reply.code(204).send(null);
    },
  );
};
