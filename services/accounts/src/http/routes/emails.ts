import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { requireSiteAdmin, targetUser } from '../auth.ts';
import { checkInput } from '../input.ts';
import {
  Email,
  IfMatchHeaders,
  json,
  Message,
  NewEmail,
  parseIfMatch,
  problemsFor,
  UserIdParam,
  UserView,
} from '../schemas.ts';
import type { RouteOptions } from './options.ts';

const strict = { additionalProperties: false } as const;
const UserAndEmail = Type.Object({ userId: UserIdParam, email: Email });

/** A user's addresses: add, remove, make primary, ask for a verification email, set verified (site admins). */
export const emailRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { accounts, rateLimits }) => {
  app.addHook('preValidation', checkInput);
  app.post(
    '/users/:userId/emails',
    {
      config: { rateLimit: rateLimits.emailRequests },
      schema: {
        tags: ['addresses'],
        summary: 'Add an address (unverified; a verification email is requested when SMTP is configured)',
        description: 'At most 3 unverified addresses per user. An address belongs to at most one user.',
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        headers: IfMatchHeaders,
        body: Type.Object({ email: NewEmail }, strict),
        response: {
          201: json(UserView, 'The user with the new address'),
          ...problemsFor(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const { userId } = targetUser(request, request.params.userId);
      const { user } = await accounts.addEmail(
        userId,
        request.body.email.toLowerCase(),
        parseIfMatch(request.headers['if-match']),
      );
      return reply.code(201).send(user);
    },
  );

  app.delete(
    '/users/:userId/emails/:email',
    {
      schema: {
        tags: ['addresses'],
        summary: 'Remove an address (not the primary one)',
        security: [{ apiKey: [] }],
        params: UserAndEmail,
        headers: IfMatchHeaders,
        response: {
          200: json(UserView, 'The user without the address'),
          ...problemsFor(400, 401, 403, 404, 409),
        },
      },
    },
    async (request) => {
      const { userId } = targetUser(request, request.params.userId);
      const { user } = await accounts.removeEmail(
        userId,
        request.params.email.toLowerCase(),
        parseIfMatch(request.headers['if-match']),
      );
      return user;
    },
  );

  app.put(
    '/users/:userId/primary-email',
    {
      schema: {
        tags: ['addresses'],
        summary: 'Make one of your addresses primary (it must be verified)',
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        headers: IfMatchHeaders,
        body: Type.Object({ email: NewEmail }, strict),
        response: { 200: json(UserView, 'The user'), ...problemsFor(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const { userId } = targetUser(request, request.params.userId);
      const { user } = await accounts.setPrimaryEmail(
        userId,
        request.body.email.toLowerCase(),
        parseIfMatch(request.headers['if-match']),
      );
      return user;
    },
  );

  app.post(
    '/users/:userId/emails/:email/verification-requests',
    {
      config: { rateLimit: rateLimits.emailRequests },
      schema: {
        tags: ['addresses'],
        summary: 'Ask for a new verification email (at most once a minute per address)',
        security: [{ apiKey: [] }],
        params: UserAndEmail,
        response: {
          202: json(Message, 'A verification email is on its way'),
          ...problemsFor(400, 401, 403, 404, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const { userId } = targetUser(request, request.params.userId);
      const email = request.params.email.toLowerCase();
      await accounts.requestEmailVerification(userId, email);
      return reply.code(202).send({ message: `A verification email to ${email} is on its way.` });
    },
  );

  app.put(
    '/users/:userId/emails/:email/verified',
    {
      schema: {
        tags: ['addresses'],
        summary: 'Set an address verified or unverified (site admins)',
        security: [{ apiKey: [] }],
        params: UserAndEmail,
        headers: IfMatchHeaders,
        body: Type.Object({ verified: Type.Boolean() }, strict),
        response: { 200: json(UserView, 'The user'), ...problemsFor(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const admin = requireSiteAdmin(request);
      const { userId } = targetUser(request, request.params.userId);
      const { user } = await accounts.setEmailVerified(
        userId,
        request.params.email.toLowerCase(),
        request.body.verified,
        admin.userId,
        parseIfMatch(request.headers['if-match']),
      );
      return user;
    },
  );
};
