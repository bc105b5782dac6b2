import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requireUser } from '../auth.ts';
import { checkInput } from '../input.ts';
import { InvitationView, json, NewEmail, OrganizationName, problemsFor } from '../schemas.ts';
import type { RouteOptions } from './options.ts';

/** Invitations, decided on the inviter's stream (`UserInvited`). */
export const invitationRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (
  app,
  { accounts, rateLimits },
) => {
  app.addHook('preValidation', checkInput);
  app.post(
    '/invitations',
    {
      config: { rateLimit: rateLimits.emailRequests },
      schema: {
        tags: ['invitations'],
        summary: 'Invite an address to the site, or to an organization',
        description:
          'The caller is the inviter. When the address belongs to a user, the invitation names them ' +
          '(`inviteeUserId`) and is mailed to their verified primary address — only when they hold the address ' +
          'verified: an address someone merely added (unverified) proves nothing, and the invitation then goes ' +
          'to the address itself. Only a sign-up with the code of an invitation mailed to the address itself ' +
          'starts verified.',
        security: [{ apiKey: [] }],
        body: Type.Object(
          {
            email: NewEmail,
            organization: Type.Optional(OrganizationName),
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
