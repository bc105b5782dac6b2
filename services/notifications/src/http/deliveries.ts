import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queryable } from '@sitemail/db';
import { defaultProblemResponses as problems } from '@sitemail/service-kit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { DEFAULT_MAX_AGE_HOURS, giveUpOf } from '../delivery/backoff.ts';
import type { QueueState } from '../delivery/circuit-breaker.ts';
import { type SuppressionReason, suppressionReasonText } from '../domain/emails.ts';
import { listAttempts } from '../store/attempts.ts';
import { listBounces } from '../store/bounces.ts';
import { type DeliveryRow, findDelivery, listDeliveries } from '../store/deliveries.ts';
import { deliveryBounceView } from './bounces.ts';
import { forbidden, invalidInput, notFound, unauthenticated } from './problem.ts';
import {
  DeliveryDetail,
  DeliveryList,
  type DeliverySummary,
  ListQuery,
  MAX_CURSOR,
  QueueStateSchema,
  Uuid,
} from './schemas.ts';

export interface DeliveryRoutesOptions {
  db: Queryable;
  authenticate: (request: FastifyRequest) => Promise<{ userId: string; siteAdmin: boolean } | null>;
  /** This instance's delivery worker's state; undefined without a worker. */
  queueState?: () => QueueState | undefined;
  /** `email.delivery.maxAgeHours` in force, for the give-up time of deliveries not tried yet. */
  maxAgeHours?: () => number | undefined;
}

/** The queue's state as the delivery log shows it. */
export function queueStateView(state: QueueState | undefined): Static<typeof QueueStateSchema> {
  if (!state) return { state: 'no-worker', summary: 'no delivery worker in this instance' };
  if (state.state === 'sending') return { state: 'sending', summary: 'sending' };
  return {
    state: 'paused',
    summary: `paused: ${state.reason}`,
    cause: state.cause,
    reason: state.reason,
    since: state.since.toISOString(),
    nextProbeAt: state.nextProbeAt.toISOString(),
    probes: state.probes,
  };
}

const iso = (t: Date | string) => new Date(t).toISOString();
const isoOrNull = (t: Date | string | null) => (t === null ? null : iso(t));

function notSentReason(r: DeliveryRow): string | null {
  if (r.status === 'suppressed' && r.suppression_reason) {
    return suppressionReasonText[r.suppression_reason as SuppressionReason] ?? r.suppression_reason;
  }
  if (r.status === 'awaiting-recipient' && r.suppression_reason && r.next_attempt_at !== null) {
    const why = suppressionReasonText[r.suppression_reason as SuppressionReason] ?? r.suppression_reason;
    return `waiting for the recipient (${why}): decided again as the user's account events arrive; suppressed if still so at ${iso(r.next_attempt_at)}`;
  }
  if (r.status === 'deferred' || r.status === 'failed') return r.last_error;
  return null;
}

const pending = new Set(['queued', 'deferred', 'sending']);

const summary = (r: DeliveryRow, maxAgeHours: number): Static<typeof DeliverySummary> => ({
  id: r.id,
  status: r.status,
  emailKind: r.email_kind,
  recipientAddress: r.recipient_address,
  userId: r.user_id,
  eventId: r.event_id,
  eventType: r.event_type,
  suppressionReason: r.suppression_reason,
  notSentReason: notSentReason(r),
  attemptCount: r.attempt_count,
  nextAttemptAt: isoOrNull(r.next_attempt_at),
  // Stored from the first attempt on; before it, what the config in force gives.
  giveUpAt:
    r.give_up_at !== null
      ? iso(r.give_up_at)
      : pending.has(r.status)
        ? giveUpOf(new Date(r.created_at), r.link_expires_at ?? undefined, maxAgeHours).at.toISOString()
        : null,
  failureReason: r.failure_reason,
  replyScope: r.reply_scope,
  messageId: r.message_id,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
  sentAt: isoOrNull(r.sent_at),
});

/** The delivery log for site admins: every intended email, sent or not, and why not. */
export const deliveryRoutes: FastifyPluginAsync<DeliveryRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const errors = { 400: problems[400], 401: problems[401], 403: problems[403], 500: problems[500] };
  const maxAge = () => opts.maxAgeHours?.() ?? DEFAULT_MAX_AGE_HOURS;
  const queue = () => queueStateView(opts.queueState?.());

  // Credentials before anything else: an anonymous caller learns nothing about validation or ids.
  app.addHook('onRequest', async (request) => {
    const user = await opts.authenticate(request);
    if (!user) throw unauthenticated();
    if (!user.siteAdmin) throw forbidden('only site admins can read the delivery log');
  });

  app.get(
    '/deliveries',
    {
      schema: {
        summary: 'List deliveries (site admins)',
        description:
          'Newest first. Filter by user, recipient address, status or event; page with limit and cursor. Suppressed emails are listed with the reason they were not sent.',
        tags: ['deliveries'],
        security: [{ apiKey: [] }],
        querystring: ListQuery,
        response: { 200: DeliveryList, ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      if (q.cursor !== undefined && BigInt(q.cursor) > MAX_CURSOR) {
        throw invalidInput(
          `querystring cursor must be at most ${MAX_CURSOR} (a nextCursor of a previous page)`,
          'cursor',
        );
      }
      const limit = q.limit ?? 50;
      // One more than the page: whether it exists says if there is a next page.
      const rows = await listDeliveries(opts.db, {
        userId: q.userId,
        address: q.address,
        status: q.status,
        eventId: q.eventId,
        before: q.cursor,
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      const hours = maxAge();
      return {
        queue: queue().summary,
        deliveries: page.map((r) => summary(r, hours)),
        ...(rows.length > limit ? { nextCursor: String(page.at(-1)!.seq) } : {}),
      };
    },
  );

  app.get(
    '/deliveries/:id',
    {
      schema: {
        summary: 'One delivery with its attempts (site admins)',
        description:
          'Every attempt with the SMTP reply or error and the step that failed, and why the email was not sent.',
        tags: ['deliveries'],
        security: [{ apiKey: [] }],
        params: Type.Object({ id: Uuid }),
        response: { 200: DeliveryDetail, 404: problems[404], ...errors },
      },
    },
    async (request) => {
      const row = await findDelivery(opts.db, request.params.id);
      if (!row) throw notFound(`no delivery ${request.params.id}`, 'id');
      const attempts = await listAttempts(opts.db, row.id);
      const bounces = await listBounces(opts.db, row.id);
      return {
        ...summary(row, maxAge()),
        lastError: row.last_error,
        lastErrorStep: row.last_error_step,
        smtpResponse: row.smtp_response,
        attempts: attempts.map((a) => ({
          attempt: a.attempt,
          worker: a.worker,
          startedAt: iso(a.started_at),
          finishedAt: iso(a.finished_at),
          outcome: a.outcome,
          smtpResponse: a.smtp_response,
          responseCode: a.response_code,
          errorStep: a.error_step,
          replyScope: a.reply_scope,
          error: a.error,
        })),
        bounces: bounces.map(deliveryBounceView),
      };
    },
  );

  app.get(
    '/deliveries/queue',
    {
      schema: {
        summary: "The delivery queue's state (site admins)",
        description:
          "Whether this instance's delivery worker sends, or is paused and why. Paused: the SMTP server refuses this sender as configured (authentication, TLS, relay denied) or does not answer; nothing is claimed and no delivery fails meanwhile; it resumes when the site config changes, when a test email with the saved settings is accepted, or when a probe gets through. /readyz stays ready meanwhile: the service is fine, the relay is not.",
        tags: ['deliveries'],
        security: [{ apiKey: [] }],
        response: { 200: QueueStateSchema, ...errors },
      },
    },
    async () => queue(),
  );
};
