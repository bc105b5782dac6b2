import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { forbidden, invalidInput } from '../../application/errors.ts';
import { requireSiteAdmin, targetUser } from '../auth.ts';
import { checkInput } from '../input.ts';
import { retryAfterHeader } from '../retry-after.ts';
import {
  DisplayName,
  IfMatchHeaders,
  json,
  Message,
  NewEmail,
  Password,
  parseIfMatch,
  problemsFor,
  UserIdParam,
  Username,
  UserView,
} from '../schemas.ts';
import type { RouteOptions } from './options.ts';

const strict = { additionalProperties: false } as const;

/** Users: builtin sign-up, admin- and API-created users, external-provider users, reading one, site admin. */
export const userRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { accounts, rateLimits }) => {
  app.addHook('preValidation', checkInput);
  // A password change refused by the per-account throttle says when to retry.
  app.addHook('onError', retryAfterHeader);
  app.put(
    '/users/:userId/password',
    {
      config: { rateLimit: rateLimits.login },
      schema: {
        tags: ['users'],
        summary: 'Change your own password (builtin auth), proving the current one',
        description:
          "Outstanding set-password and reset links stop working. Site admins cannot change other users' passwords.",
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        body: Type.Object(
          { currentPassword: Type.String({ minLength: 1, maxLength: 256 }), newPassword: Password },
          strict,
        ),
        response: { 200: json(Message, 'The password is changed'), ...problemsFor(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const { principal, userId } = targetUser(request, request.params.userId);
      if (userId !== principal.userId) throw forbidden('only the user can change their password');
      await accounts.changePassword(userId, request.body.currentPassword, request.body.newPassword);
      return { message: 'Your password is changed.' };
    },
  );

  app.post(
    '/sign-up',
    {
      config: { rateLimit: rateLimits.signUp },
      schema: {
        tags: ['users'],
        summary: 'Sign up with a username, address and password (builtin auth)',
        description:
          'With SMTP configured (email.smtp) the address starts unverified and a verification email is requested; ' +
          'without it the address is recorded as verified. The first user of the site becomes site admin. ' +
          'With `invitationCode` from an invitation mailed to this very address, the address is verified at once; ' +
          'an invitation mailed elsewhere (to an existing user) proves nothing of it: it starts unverified.',
        body: Type.Object(
          {
            username: Username,
            email: NewEmail,
            password: Password,
            displayName: Type.Optional(DisplayName),
            invitationCode: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          strict,
        ),
        response: { 201: json(UserView, 'The new user'), ...problemsFor(400, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      const { user } = await accounts.signUp({ ...request.body, email: request.body.email.toLowerCase() });
      return reply.code(201).header('location', `/users/${user.id}`).send(user);
    },
  );

  app.post(
    '/users',
    {
      schema: {
        tags: ['users'],
        summary: 'Create a user (site admins)',
        description:
          '`origin: "site-admin"` is the admin UI flow: with SMTP configured the address starts unverified and a ' +
          'set-password link is requested (a verification link on single-sign-on sites). `origin: "api"` is an ' +
          'automation or CLI creating the user: the address is assumed verified.',
        security: [{ apiKey: [] }],
        body: Type.Object(
          {
            username: Username,
            email: NewEmail,
            displayName: Type.Optional(DisplayName),
            origin: Type.Optional(
              Type.Union([Type.Literal('site-admin'), Type.Literal('api')], {
                description: 'Default: site-admin',
              }),
            ),
          },
          strict,
        ),
        response: { 201: json(UserView, 'The new user'), ...problemsFor(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      requireSiteAdmin(request);
      const { user } = await accounts.createUserByAdmin({
        ...request.body,
        origin: request.body.origin ?? 'site-admin',
        email: request.body.email.toLowerCase(),
      });
      return reply.code(201).header('location', `/users/${user.id}`).send(user);
    },
  );

  app.put(
    '/external-accounts/:provider/:externalId',
    {
      schema: {
        tags: ['users'],
        summary:
          'Ensure the user of an external account exists (a trusted auth gateway, with a site admin key)',
        description:
          'Creates the user, verified, the first time the provider reports the account (201); afterwards ' +
          'answers the existing user unchanged (200). Idempotent.',
        security: [{ apiKey: [] }],
        params: Type.Object({
          provider: Type.String({
            pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
            description: 'github, gitlab, saml, openidconnect, ...',
          }),
          externalId: Type.String({ minLength: 1, maxLength: 255 }),
        }),
        body: Type.Object(
          { username: Username, email: NewEmail, displayName: Type.Optional(DisplayName) },
          strict,
        ),
        response: {
          200: json(UserView, 'The user already existed'),
          201: json(UserView, 'The user was created'),
          ...problemsFor(400, 401, 403, 409),
        },
      },
    },
    async (request, reply) => {
      requireSiteAdmin(request);
      if (request.params.provider === 'builtin') {
        throw invalidInput('provider "builtin" is not an external provider', 'provider');
      }
      const { user, created } = await accounts.upsertExternalUser({
        ...request.params,
        ...request.body,
        email: request.body.email.toLowerCase(),
      });
      return reply.code(created ? 201 : 200).send(user);
    },
  );

  app.get(
    '/users/:userId',
    {
      schema: {
        tags: ['users'],
        summary: 'Read a user (yourself with `me`; anyone as site admin)',
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        response: {
          200: json(UserView, 'The user, from the read model'),
          ...problemsFor(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const { userId } = targetUser(request, request.params.userId);
      const user = await accounts.getUser(userId);
      return reply.header('etag', `"${user.version}"`).send(user);
    },
  );

  app.put(
    '/users/:userId/site-admin',
    {
      schema: {
        tags: ['users'],
        summary: 'Make a user site admin, or not (site admins; not on yourself)',
        security: [{ apiKey: [] }],
        params: Type.Object({ userId: UserIdParam }),
        headers: IfMatchHeaders,
        body: Type.Object({ siteAdmin: Type.Boolean() }, strict),
        response: { 200: json(UserView, 'The user'), ...problemsFor(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const admin = requireSiteAdmin(request);
      const { userId } = targetUser(request, request.params.userId);
      const { user } = await accounts.setSiteAdmin(
        userId,
        request.body.siteAdmin,
        admin.userId,
        parseIfMatch(request.headers['if-match']),
      );
      return user;
    },
  );
};
