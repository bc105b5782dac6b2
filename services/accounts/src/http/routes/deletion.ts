import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { forbidden } from '../../application/errors.ts';
import { requireSiteAdmin, targetUser } from '../auth.ts';
import { checkInput } from '../input.ts';
import { retryAfterHeader } from '../retry-after.ts';
import { IfMatchHeaders, json, Message, parseIfMatch, problemsFor, UserIdParam } from '../schemas.ts';
import type { RouteOptions } from './options.ts';

const erasure =
  'The user is deleted for real: their addresses and username are free again, their API keys stop at once, ' +
  'and the personal fields of their stored events become unreadable (crypto-shredding). `UserDeleted` goes ' +
  'to every consumer, which erases what it holds about the user.';

/** Deleting a user: by a site admin, or by the user themself re-confirming with their password. */
export const deletionRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (
  app,
  { accounts, rateLimits },
) => {
  app.addHook('preValidation', checkInput);
  app.addHook('onError', retryAfterHeader);

  app.delete(
    '/users/:userId',
    {
      schema: {
        tags: ['users'],
        summary: 'Delete another user (site admins)',
        description: `${erasure} Your own account: \`POST /users/me/delete\`. The site's last site admin cannot be deleted.`,
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        headers: IfMatchHeaders,
        response: {
          204: { description: 'Deleted', type: 'null' },
          ...problemsFor(400, 401, 403, 404, 409, 410),
        },
      },
    },
    async (request, reply) => {
      const admin = requireSiteAdmin(request);
      const { userId } = targetUser(request, request.params.userId);
      if (userId === admin.userId) {
        throw forbidden('to delete your own account use POST /users/me/delete with your password');
      }
      await accounts.deleteUser(userId, admin, undefined, parseIfMatch(request.headers['if-match']));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/users/:userId/delete',
    {
      config: { rateLimit: rateLimits.login },
      schema: {
        tags: ['users'],
        summary: 'Delete your own account, re-confirming with your password',
        description: `${erasure} A user without a password (external provider) confirms with the API key the request carries.`,
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        headers: IfMatchHeaders,
        body: Type.Object(
          {
            password: Type.Optional(
              Type.String({ minLength: 1, maxLength: 256, description: 'Your current password' }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: json(Message, 'The account is deleted'),
          ...problemsFor(400, 401, 403, 404, 409, 410, 429),
        },
      },
    },
    async (request) => {
      const { principal, userId } = targetUser(request, request.params.userId);
      if (userId !== principal.userId) {
        throw forbidden(
          'only the user can delete their account this way; site admins use DELETE /users/{userId}',
        );
      }
      await accounts.deleteUser(
        userId,
        principal,
        request.body.password,
        parseIfMatch(request.headers['if-match']),
      );
      return { message: 'Your account is deleted.' };
    },
  );
};
