import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requireUser } from '../auth.ts';
import { Email, InvitationView, json, problemsFor } from '../schemas.ts';
import type { RouteOptions } from './options.ts';

/** Invitations, decided on the inviter's stream (`UserInvited`). */
export const invitationRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (
  app,
  { accounts, rateLimits },
) => {
  app.post(
    '/invitations',
    {
      config: { rateLimit: rateLimits.emailRequests },
      schema: {
        tags: ['invitations'],
        summary: 'Invite an address to the site, or to an organization',
        description:
          'The caller is the inviter. When the address belongs to a user, the invitation names them ' +
          '(`inviteeUserId`); otherwise the invitation link lets the invitee sign up with the address verified.',
        security: [{ apiKey: [] }],
        body: Type.Object(
          {
            email: Email,
            organization: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '\\S' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: json(InvitationView, 'The invitation'), ...problemsFor(400, 401, 409, 429) },
      },
    },
    async (request, reply) => {
      const principal = requireUser(request);
      const { invitation } = await accounts.invite(
        principal.userId,
        request.body.email.toLowerCase(),
        request.body.organization,
      );
      return reply.code(201).send(invitation);
    },
  );
};
