import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { linkPaths } from '@sitemail/contracts';
import type { FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { AccountsError, RefusalError } from '../../application/errors.ts';
import { checkInput } from '../input.ts';
import { refusalStatus } from '../problems.ts';
import {
  Email,
  InvitationView,
  json,
  Message,
  NewEmail,
  Password,
  Problem,
  problemsFor,
} from '../schemas.ts';
import type { RouteOptions } from './options.ts';

const strict = { additionalProperties: false } as const;
const Code = Type.String({ minLength: 1, maxLength: 200, description: 'The code from the link' });

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A link opened in a browser gets a page; an API client (no text/html in Accept) gets JSON. */
const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html');

const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
  `<meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title>` +
  `<style>body{font:16px system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}</style></head>` +
  `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;

const htmlOrProblem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem }, 'text/html': { schema: Type.String() } },
});

/** For a browser, a refused link is a page saying so, with the status of the problem. */
function linkFailurePage(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply | null {
  if (!wantsHtml(request)) return null;
  const status =
    err instanceof AccountsError
      ? err.status
      : err instanceof RefusalError
        ? refusalStatus[err.refusal.refusal]
        : null;
  if (status === null) return null;
  const message = err instanceof Error ? err.message : 'this link cannot be used';
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(page('This link cannot be used', `<p>${escapeHtml(message)}.</p>`));
}

/**
 * The pages the links in emails open (`linkPaths` of the contracts; notifications builds the links
 * from `externalURL`), and the password reset request. Codes are single-use and expire; only their
 * SHA-256 is stored.
 */
export const linkRoutes: FastifyPluginAsyncTypebox<RouteOptions> = async (app, { accounts, rateLimits }) => {
  app.addHook('preValidation', checkInput);
  // Reset requests finish their work after answering; closing waits for it.
  app.addHook('onClose', () => accounts.idle());
  app.get(
    linkPaths.verifyEmail,
    {
      schema: {
        tags: ['links'],
        summary: 'Follow a verification link: verifies the address (JSON, or a page for a browser)',
        querystring: Type.Object({ code: Code, email: Email }),
        response: {
          200: {
            description: 'The address is verified',
            content: {
              'application/json': {
                schema: Type.Object({
                  message: Type.String(),
                  userId: Type.String({ format: 'uuid' }),
                  email: Email,
                }),
              },
              'text/html': { schema: Type.String() },
            },
          },
          400: htmlOrProblem('The link is invalid, used or expired; `field` is `code`'),
          404: htmlOrProblem('The address was removed since the link was sent'),
        },
      },
    },
    async (request, reply) => {
      const email = request.query.email.toLowerCase();
      reply.header('cache-control', 'no-store');
      try {
        const { user } = await accounts.verifyEmailByLink(request.query.code, email);
        const message = `Your email address ${email} is verified.`;
        if (wantsHtml(request)) {
          return reply
            .type('text/html; charset=utf-8')
            .send(page('Email address verified', `<p>${escapeHtml(message)}</p>`));
        }
        return reply.type('application/json').send({ message, userId: user.id, email });
      } catch (err) {
        if (linkFailurePage(err, request, reply)) return reply;
        throw err;
      }
    },
  );

  app.get(
    linkPaths.passwordReset,
    {
      schema: {
        tags: ['links'],
        summary: 'Open a set-password or reset link: describes it (JSON) or shows the form (browser)',
        querystring: Type.Object({ code: Code }),
        response: {
          200: {
            description: 'The link is valid',
            content: {
              'application/json': {
                schema: Type.Object({
                  kind: Type.Union([Type.Literal('set-password'), Type.Literal('reset')]),
                  email: Email,
                  expiresAt: Type.String({ format: 'date-time' }),
                }),
              },
              'text/html': { schema: Type.String() },
            },
          },
          400: htmlOrProblem('The link is invalid, used or expired'),
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      try {
        const link = await accounts.describePasswordLink(request.query.code);
        if (!wantsHtml(request)) return reply.type('application/json').send(link);
        const title = link.kind === 'set-password' ? 'Set your password' : 'Reset your password';
        const form =
          `<p>For ${escapeHtml(link.email)}.</p><form id="f"><label>New password (at least 12 characters) ` +
          `<input type="password" name="password" minlength="12" required autocomplete="new-password"></label> ` +
          `<button>Save</button></form><p id="m" role="status"></p><script>` +
          `document.getElementById('f').onsubmit=async(e)=>{e.preventDefault();` +
          `const r=await fetch(location.pathname,{method:'POST',headers:{'content-type':'application/json'},` +
          `body:JSON.stringify({code:new URLSearchParams(location.search).get('code'),password:e.target.password.value})});` +
          `const b=await r.json();document.getElementById('m').textContent=r.ok?b.message:b.detail;}</script>`;
        return reply.type('text/html; charset=utf-8').send(page(title, form));
      } catch (err) {
        if (linkFailurePage(err, request, reply)) return reply;
        throw err;
      }
    },
  );

  app.post(
    linkPaths.passwordReset,
    {
      config: { rateLimit: rateLimits.login },
      schema: {
        tags: ['links'],
        summary: 'Set a new password with the code of a set-password or reset link',
        description:
          'A set-password link also verifies the address it was sent to. Every password link of the user is used up.',
        body: Type.Object({ code: Code, password: Password }, strict),
        response: {
          200: json(
            Type.Object({ message: Type.String(), userId: Type.String({ format: 'uuid' }) }),
            'The password is set',
          ),
          ...problemsFor(400, 403, 429),
        },
      },
    },
    async (request, reply) => {
      const { user } = await accounts.setPasswordByLink(request.body.code, request.body.password);
      return reply
        .header('cache-control', 'no-store')
        .send({ message: 'Your password is set.', userId: user.id });
    },
  );

  app.post(
    '/password-reset-requests',
    {
      config: { rateLimit: rateLimits.emailRequests },
      schema: {
        tags: ['links'],
        summary: 'Ask for a password reset link (builtin auth only)',
        description:
          'Refused (403) when auth.providers has no builtin entry, and (409) when SMTP is not configured. For an ' +
          'address that is unknown or unverified the answer is the same 202 as on success, and nothing is sent. ' +
          'The answer comes before any lookup (the same time either way); at most one reset email a minute ' +
          'and 5 an hour reach one address, whoever asks.',
        body: Type.Object({ email: NewEmail }, strict),
        response: { 202: json(Message, 'Accepted'), ...problemsFor(400, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      void accounts.requestPasswordReset(request.body.email, (err) =>
        request.log.error({ err }, 'password reset request failed after its answer'),
      );
      return reply.code(202).send({
        message: 'If that address belongs to a user and is verified, a password reset link is on its way.',
      });
    },
  );

  app.get(
    linkPaths.invitation,
    {
      schema: {
        tags: ['links'],
        summary: 'Open an invitation link: who invited the address to what (does not use the link)',
        description:
          'To accept as a new user, sign up with this address and `invitationCode` set to the code.',
        querystring: Type.Object({ code: Code, email: Email }),
        response: {
          200: {
            description: 'The invitation',
            content: {
              'application/json': {
                schema: Type.Object({ invitation: InvitationView, signUpPath: Type.String() }),
              },
              'text/html': { schema: Type.String() },
            },
          },
          400: htmlOrProblem('The link is invalid, used or expired'),
        },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      try {
        const invitation = await accounts.describeInvitation(
          request.query.code,
          request.query.email.toLowerCase(),
        );
        const signUpPath = '/sign-up';
        if (!wantsHtml(request)) return reply.type('application/json').send({ invitation, signUpPath });
        const to = invitation.organization ? `the organization ${invitation.organization}` : 'this site';
        return reply
          .type('text/html; charset=utf-8')
          .send(
            page(
              'You are invited',
              `<p>${escapeHtml(invitation.inviterUsername)} invited ${escapeHtml(invitation.email)} to ${escapeHtml(to)}.</p>` +
                (invitation.inviteeUserId
                  ? '<p>Sign in to your account to join.</p>'
                  : `<p>Sign up with this address (POST ${signUpPath} with <code>invitationCode</code>) to accept.</p>`),
            ),
          );
      } catch (err) {
        if (linkFailurePage(err, request, reply)) return reply;
        throw err;
      }
    },
  );
};
