import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queryable } from '@sitemail/db';
import { problemResponseFor, defaultProblemResponses as problems } from '@sitemail/service-kit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { applyDsn } from '../application/bounces.ts';
import type { ReplyScope } from '../smtp/classify.ts';
import { type DsnAction, dsnActions, parseDsn } from '../smtp/dsn.ts';
import type { BounceRow } from '../store/bounces.ts';
import { forbidden, invalidInput, unauthenticated } from './problem.ts';

/** The largest DSN taken: a report with the returned headers is a few KiB, with the whole message rarely past 100 KiB. */
export const MAX_DSN_BYTES = 1024 * 1024;

export interface BounceRoutesOptions {
  db: Queryable;
  authenticate: (request: FastifyRequest) => Promise<{ userId: string; siteAdmin: boolean } | null>;
  clock?: () => Date;
  /** Each report newly recorded (the metrics' notifications_bounces_total). */
  onRecorded?: (r: { action: DsnAction; scope: ReplyScope | 'none' }) => void;
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Action = Type.Unsafe<DsnAction>(
  Type.Union(
    dsnActions.map((a) => Type.Literal(a)),
    { description: 'The report’s Action (RFC 3464 §2.3.3)' },
  ),
);
const Scope = Nullable(
  Type.Unsafe<ReplyScope>(
    Type.Union(
      ['address', 'message', 'sender', 'transient'].map((s) => Type.Literal(s)),
      {
        description:
          'For a failed report, whose problem it is (RFC 3463, as a reply at SMTP time): address (the address goes on the suppression list), message, sender, transient',
      },
    ),
  ),
);

const Report = Type.Object(
  {
    finalRecipient: Type.String(),
    action: Action,
    status: Nullable(Type.String({ description: 'RFC 3463 status, e.g. 5.1.1' })),
    replyScope: Scope,
    reply: Nullable(Type.String({ description: 'The report as one reply line, as classified' })),
    effect: Type.Union(
      [
        Type.Literal('bounced'),
        Type.Literal('recorded'),
        Type.Literal('duplicate'),
        Type.Literal('other-recipient'),
        Type.Literal('unmatched'),
      ],
      {
        description:
          'bounced: the delivery, accepted earlier, now reads failed (failureReason bounced), and for scope address the address is suppressed; recorded: kept in the delivery’s bounces, no status change (delayed, delivered, relayed, expanded, or a weaker failed report); duplicate: this report was posted before, nothing changed; other-recipient: about another recipient of the returned message; unmatched: no delivery of ours matches the DSN',
      },
    ),
  },
  { additionalProperties: false },
);

const BounceResult = Type.Object(
  {
    matched: Type.Integer({
      minimum: 0,
      maximum: 1,
      description: 'Deliveries the DSN was matched to (0 or 1)',
    }),
    deliveryId: Nullable(Type.String({ format: 'uuid', description: 'GET /deliveries/{id} shows it' })),
    originalMessageId: Nullable(Type.String({ description: 'The returned message’s Message-ID' })),
    originalEnvelopeId: Nullable(Type.String({ description: 'The ENVID the message was sent with' })),
    reportingMta: Nullable(Type.String()),
    reports: Type.Array(Report),
  },
  { additionalProperties: false },
);

/** A DSN report as GET /deliveries/{id} shows it (`bounces`). */
export const DeliveryBounce = Type.Object(
  {
    action: Action,
    status: Nullable(Type.String({ description: 'RFC 3463 status, e.g. 5.1.1' })),
    finalRecipient: Nullable(Type.String()),
    diagnosticCode: Nullable(
      Type.String({ description: 'The reply the remote server gave, e.g. smtp; 550 5.1.1 …' }),
    ),
    remoteMta: Nullable(Type.String()),
    reportingMta: Nullable(Type.String()),
    originalEnvelopeId: Nullable(Type.String()),
    replyScope: Scope,
    effect: Type.Union([Type.Literal('bounced'), Type.Literal('recorded')], {
      description: 'bounced: this report failed the delivery; recorded: kept, no status change',
    }),
    receivedAt: Type.String({ format: 'date-time' }),
    receivedBy: Type.String({ description: 'admin:<user id> who posted the DSN' }),
  },
  { additionalProperties: false },
);

export const deliveryBounceView = (b: BounceRow): Static<typeof DeliveryBounce> => ({
  action: b.action,
  status: b.status,
  finalRecipient: b.final_recipient,
  diagnosticCode: b.diagnostic_code,
  remoteMta: b.remote_mta,
  reportingMta: b.reporting_mta,
  originalEnvelopeId: b.original_envelope_id,
  replyScope: b.reply_scope,
  effect: b.effect,
  receivedAt: new Date(b.received_at).toISOString(),
  receivedBy: b.received_by,
});

/**
 * `POST /bounces`: a delivery status notification (RFC 3464) for an email a relay accepted and
 * bounced later, posted by a site admin (or their mail pipeline, holding an admin's API key) as
 * the raw message. The body is taken as bytes (latin1 keeps every byte as one character, so the
 * MIME parser sees the 8-bit parts as they came) up to 1 MiB, for this route only.
 */
export const bounceRoutes: FastifyPluginAsync<BounceRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const clock = opts.clock ?? (() => new Date());
  const admins = new WeakMap<FastifyRequest, string>();

  // Credentials before the body is read: an anonymous caller cannot make us parse a megabyte.
  app.addHook('onRequest', async (request) => {
    const user = await opts.authenticate(request);
    if (!user) throw unauthenticated();
    if (!user.siteAdmin) throw forbidden('only site admins can post bounces');
    admins.set(request, user.userId);
  });

  // This plugin's own parsers (encapsulated, so the other routes keep theirs): the raw message
  // only; JSON or any other type is 415.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['message/rfc822', 'message/global', 'text/plain'],
    { parseAs: 'buffer', bodyLimit: MAX_DSN_BYTES },
    (_request, body, done) => done(null, (body as Buffer).toString('latin1')),
  );

  app.post(
    '/bounces',
    {
      bodyLimit: MAX_DSN_BYTES,
      schema: {
        summary: 'Post a bounce that arrived after acceptance (site admins)',
        description:
          'The raw delivery status notification (RFC 3464 multipart/report; report-type=delivery-status) as received, Content-Type message/rfc822 or text/plain, at most 1 MiB. It is matched to a delivery by the envelope id (the delivery id, sent as ENVID), the X-Sitemail-Delivery or Message-ID header of the returned message. A failed report classified address-scoped (e.g. 5.1.1) fails the delivery (failureReason bounced) and suppresses the address (address-undeliverable); message-scoped fails that delivery only; delayed and the other actions are recorded. Posting the same DSN again changes nothing (effect duplicate). 202 whether or not a delivery matched (matched 0 when none did); 400 naming what is wrong when the body is not a DSN.',
        tags: ['deliveries'],
        security: [{ apiKey: [] }],
        consumes: ['message/rfc822', 'text/plain'],
        body: Type.String({ description: 'The DSN message, as received (MIME)' }),
        response: {
          202: BounceResult,
          400: problems[400],
          401: problems[401],
          403: problems[403],
          413: problems[413],
          415: problemResponseFor('Not message/rfc822 or text/plain'),
          500: problems[500],
        },
      },
    },
    async (request, reply) => {
      const parsed = await parseDsn(Buffer.from(request.body, 'latin1'));
      if (!parsed.ok) throw invalidInput(`body: ${parsed.error}`, 'body');
      const dsn = parsed.dsn;
      const applied = await applyDsn(opts.db, dsn, {
        receivedBy: `admin:${admins.get(request)}`,
        now: clock(),
        ...(opts.onRecorded ? { onRecorded: opts.onRecorded } : {}),
      });
      reply.code(202);
      return {
        matched: applied.deliveryId === null ? 0 : 1,
        deliveryId: applied.deliveryId,
        originalMessageId: dsn.originalMessageId ?? null,
        originalEnvelopeId: dsn.originalEnvelopeId ?? null,
        reportingMta: dsn.reportingMta ?? null,
        reports: applied.reports,
      };
    },
  );
};
