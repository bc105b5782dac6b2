import rateLimit from '@fastify/rate-limit';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';
import {
  escapeHtml,
  HttpProblem,
  Problem,
  problemResponseFor,
  defaultProblemResponses as problems,
  sendProblem,
} from '@sitemail/service-kit';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { type EmailKind, emailKinds } from '../domain/emails.ts';
import {
  UNSUBSCRIBE_PATH,
  type UnsubscribeClaim,
  verifyUnsubscribeToken,
} from '../domain/unsubscribe-token.ts';
import { recordUnsubscribe } from '../store/unsubscribes.ts';

export interface UnsubscribeRoutesOptions {
  db: Queryable;
  /** The keys tokens are checked against: the current link-token key and, during a rotation, older ones. */
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  clock?: () => Date;
  /**
   * Per client address (default 600 a minute). Generous on purpose: one-click POSTs come from the
   * mailbox provider's servers, a few addresses for all of a site's users, and a refused one is
   * not retried; it bounds a flood (a forged token costs one HMAC, never a query).
   */
  rateLimit?: { max: number; timeWindowMs: number };
}

/** How each kind reads on the pages. */
const kindText: Partial<Record<EmailKind, string>> = {
  'code-monitor-triggered': 'code monitor notifications',
};
const what = (kind: EmailKind) => kindText[kind] ?? 'these emails';

const Token = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'The token of the one-click link (from the List-Unsubscribe header or the email footer)',
});
const Params = Type.Object({ token: Token });
const OneClick = Type.Object(
  {
    'List-Unsubscribe': Type.Literal('One-Click', {
      description: 'RFC 8058: the body a mailbox provider (or the confirmation page) posts',
    }),
  },
  { additionalProperties: false },
);
const EmailKindField = Type.String({
  description: `The kind of email the link stops (one of ${emailKinds.join(', ')}; only code-monitor-triggered can be)`,
});
const Unsubscribed = Type.Object(
  {
    message: Type.String(),
    emailKind: EmailKindField,
  },
  { additionalProperties: false },
);
const Confirm = Type.Object(
  {
    message: Type.String(),
    emailKind: EmailKindField,
    unsubscribe: Type.String({ description: 'POST here with List-Unsubscribe=One-Click to unsubscribe' }),
  },
  { additionalProperties: false },
);
const html = Type.String({ description: 'A page for a browser (Accept: text/html)' });
const htmlOrProblem = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem }, 'text/html': { schema: html } },
});

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html');

// No inline style or script: the service kit's CSP forbids both outside /docs; the form posts to
// the same path (form-action 'self').
const page = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
  `<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex"><title>${escapeHtml(title)}</title></head>` +
  `<body><h1>${escapeHtml(title)}</h1>${body}</body></html>`;

/**
 * What a refused token gets: nothing that tells a forger how close they came (malformed, another
 * key, a changed byte all read the same). Only a genuine token that aged out is told so (410).
 */
const refusal = (problem: 'invalid' | 'expired') =>
  problem === 'expired'
    ? {
        status: 410,
        code: 'link-expired',
        detail: 'this unsubscribe link has expired; use the link in a more recent email',
      }
    : { status: 400, code: 'invalid-link', detail: 'this unsubscribe link is not valid', field: 'token' };

/**
 * The one-click unsubscribe endpoints (RFC 8058), public: the token in the path is the only
 * credential. `POST` unsubscribes (what a mailbox provider sends when the user clicks its
 * "Unsubscribe"; idempotent); `GET` only shows a page with a button that posts, because link
 * scanners and prefetchers follow every URL in an email and must never unsubscribe anyone.
 * Mounted at UNSUBSCRIBE_PATH; the links in emails are `externalURL` + that path, so the site's
 * front must route it here (notifications README, "Unsubscribe").
 */
export const unsubscribeRoutes: FastifyPluginAsync<UnsubscribeRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const clock = opts.clock ?? (() => new Date());
  const limit = opts.rateLimit ?? { max: 600, timeWindowMs: 60_000 };
  await fastify.register(rateLimit, { global: false });
  // RFC 8058's body is a form (application/x-www-form-urlencoded); only in this plugin's routes.
  fastify.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 1024 },
    (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  );
  const rateLimited = {
    rateLimit: {
      max: limit.max,
      timeWindow: limit.timeWindowMs,
      keyGenerator: (request: FastifyRequest) => `ip:${request.ip}`,
      errorResponseBuilder: (_request: FastifyRequest, context: { after: string }) =>
        new HttpProblem({
          status: 429,
          code: 'rate-limited',
          detail: `too many unsubscribe requests from this address; retry in ${context.after}`,
        }),
    },
  };

  const check = (token: string, request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store');
    const result = verifyUnsubscribeToken(token, opts.linkTokenKeys, clock());
    if (result.ok) return result.claim;
    const r = refusal(result.problem);
    if (wantsHtml(request)) {
      reply
        .code(r.status)
        .type('text/html; charset=utf-8')
        .send(page('This link cannot be used', `<p>${escapeHtml(r.detail)}.</p>`));
    } else {
      sendProblem(reply, r);
    }
    return undefined;
  };

  const errors = { 400: htmlOrProblem('The token is not valid'), 410: htmlOrProblem('The token expired') };

  app.get(
    `${UNSUBSCRIBE_PATH}/:token`,
    {
      config: rateLimited,
      schema: {
        summary: 'The unsubscribe link opened in a browser: a page to confirm (public)',
        description:
          'Changes nothing (link scanners follow every link in an email): shows a button that POSTs to the same URL. An API client (no text/html in Accept) gets JSON.',
        tags: ['unsubscribe'],
        params: Params,
        response: {
          200: {
            description: 'The link is valid',
            content: { 'application/json': { schema: Confirm }, 'text/html': { schema: html } },
          },
          ...errors,
          429: problems[429],
          500: problems[500],
        },
      },
    },
    async (request, reply) => {
      const claim = check(request.params.token, request, reply);
      if (!claim) return reply;
      const message = `Stop ${what(claim.kind)} by email? Security emails about your account are always sent.`;
      if (!wantsHtml(request)) {
        return reply.type('application/json').send({
          message,
          emailKind: claim.kind,
          unsubscribe: `POST this URL with the form body List-Unsubscribe=One-Click`,
        });
      }
      // posts to the URL the browser is on (relative), so a site behind a path prefix works too
      const action = escapeHtml(encodeURIComponent(request.params.token));
      return reply
        .type('text/html; charset=utf-8')
        .send(
          page(
            'Unsubscribe',
            `<p>${escapeHtml(message)}</p><form method="post" action="${action}">` +
              `<input type="hidden" name="List-Unsubscribe" value="One-Click">` +
              `<button type="submit">Unsubscribe from ${escapeHtml(what(claim.kind))}</button></form>`,
          ),
        );
    },
  );

  app.post(
    `${UNSUBSCRIBE_PATH}/:token`,
    {
      config: rateLimited,
      schema: {
        summary: 'One-click unsubscribe (RFC 8058; public)',
        description:
          'Records that the user of the token stops getting emails of its kind (code-monitoring); later ones are suppressed `unsubscribed` in the delivery log. Idempotent: 200 again for a repeat. The body is the form `List-Unsubscribe=One-Click`. Security emails are never unsubscribable.',
        tags: ['unsubscribe'],
        consumes: ['application/x-www-form-urlencoded'],
        params: Params,
        body: OneClick,
        response: {
          200: {
            description: 'Unsubscribed (or already)',
            content: { 'application/json': { schema: Unsubscribed }, 'text/html': { schema: html } },
          },
          ...errors,
          413: problems[413],
          415: problemResponseFor('Not a form body (application/x-www-form-urlencoded) nor JSON'),
          429: problems[429],
          500: problems[500],
        },
      },
    },
    async (request, reply) => {
      const claim: UnsubscribeClaim | undefined = check(request.params.token, request, reply);
      if (!claim) return reply;
      const recorded = await recordUnsubscribe(opts.db, claim.userId, claim.kind, clock());
      request.log.info(
        { userId: claim.userId, emailKind: claim.kind, recorded },
        recorded ? 'unsubscribed' : 'unsubscribe repeated (or the user is gone)',
      );
      const message = `You will no longer get ${what(claim.kind)} by email.`;
      if (wantsHtml(request)) {
        return reply
          .type('text/html; charset=utf-8')
          .send(page('Unsubscribed', `<p>${escapeHtml(message)}</p>`));
      }
      return reply.type('application/json').send({ message, emailKind: claim.kind });
    },
  );
};
