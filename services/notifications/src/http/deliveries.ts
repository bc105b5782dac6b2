import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queryable } from '@sitemail/db';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { emailKinds, type SuppressionReason, suppressionReasonText } from '../domain/emails.ts';
import { deliveryStatuses } from '../store/queue.ts';
import { Problem, sendProblem } from './problem.ts';

export interface DeliveryRoutesOptions {
  db: Queryable;
  authenticate: (request: FastifyRequest) => Promise<{ userId: string; siteAdmin: boolean } | null>;
}

const Uuid = Type.String({ format: 'uuid' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

const Status = Type.Union(
  deliveryStatuses.map((s) => Type.Literal(s)),
  {
    description:
      'queued: waiting to be sent; sending: a worker holds it; deferred: will be retried; sent; failed: final; suppressed: never sent, see suppressionReason; awaiting-recipient: the recipient is not known (or not reachable) yet, decided again as their account events arrive until nextAttemptAt, then suppressed unless sendable',
  },
);

export const DeliverySummary = Type.Object(
  {
    id: Uuid,
    status: Status,
    emailKind: Type.Union(emailKinds.map((k) => Type.Literal(k))),
    recipientAddress: Nullable(Type.String()),
    userId: Nullable(Uuid),
    eventId: Uuid,
    eventType: Type.String(),
    suppressionReason: Nullable(
      Type.String({
        description:
          'Why it was not sent, for suppressed deliveries; for awaiting-recipient ones, the reason it would be suppressed if the wait ended now',
      }),
    ),
    notSentReason: Nullable(
      Type.String({
        description:
          'In words: the suppression reason, what an awaiting delivery waits for, or the last error of a deferred or failed delivery',
      }),
    ),
    attemptCount: Type.Integer(),
    nextAttemptAt: Nullable(Time),
    messageId: Type.String({ description: 'Message-ID header; the same on every attempt' }),
    createdAt: Time,
    updatedAt: Time,
    sentAt: Nullable(Time),
  },
  { additionalProperties: false },
);

const Attempt = Type.Object(
  {
    attempt: Type.Integer({ minimum: 1 }),
    worker: Type.String(),
    startedAt: Time,
    finishedAt: Time,
    outcome: Type.Union([
      Type.Literal('sent'),
      Type.Literal('deferred'),
      Type.Literal('failed'),
      Type.Literal('abandoned'),
    ]),
    smtpResponse: Nullable(Type.String({ description: "The server's final reply when sent" })),
    responseCode: Nullable(Type.Integer()),
    errorStep: Nullable(
      Type.String({ description: 'connect, tls, ehlo, auth, envelope, data, config, render or worker' }),
    ),
    error: Nullable(Type.String()),
  },
  { additionalProperties: false },
);

export const DeliveryDetail = Type.Object(
  {
    ...DeliverySummary.properties,
    lastError: Nullable(Type.String()),
    lastErrorStep: Nullable(Type.String()),
    smtpResponse: Nullable(Type.String()),
    attempts: Type.Array(Attempt),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    userId: Type.Optional(Uuid),
    address: Type.Optional(
      Type.String({ minLength: 3, maxLength: 254, description: 'Recipient address (any case)' }),
    ),
    status: Type.Optional(Status),
    eventId: Type.Optional(Uuid),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,19}$', description: 'nextCursor of the previous page' }),
    ),
  },
  { additionalProperties: false },
);

const DeliveryList = Type.Object(
  {
    deliveries: Type.Array(DeliverySummary),
    nextCursor: Type.Optional(
      Type.String({ description: 'Pass as cursor for the next (older) page; absent on the last page' }),
    ),
  },
  { additionalProperties: false },
);

interface Row {
  id: string;
  seq: string;
  status: Static<typeof Status>;
  email_kind: Static<typeof DeliverySummary>['emailKind'];
  recipient_address: string | null;
  user_id: string | null;
  event_id: string;
  event_type: string;
  suppression_reason: string | null;
  attempt_count: number;
  next_attempt_at: Date | string | null;
  message_id: string;
  created_at: Date | string;
  updated_at: Date | string;
  sent_at: Date | string | null;
  last_error: string | null;
  last_error_step: string | null;
  smtp_response: string | null;
}

const iso = (t: Date | string) => new Date(t).toISOString();
const isoOrNull = (t: Date | string | null) => (t === null ? null : iso(t));

function notSentReason(r: Row): string | null {
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

const summary = (r: Row): Static<typeof DeliverySummary> => ({
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
  messageId: r.message_id,
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
  sentAt: isoOrNull(r.sent_at),
});

const COLUMNS = `id, seq, status, email_kind, recipient_address, user_id, event_id, event_type, suppression_reason,
  attempt_count, next_attempt_at, message_id, created_at, updated_at, sent_at, last_error, last_error_step, smtp_response`;

/** The delivery log for site admins: every intended email, sent or not, and why not. */
export const deliveryRoutes: FastifyPluginAsync<DeliveryRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const errors = { 400: Problem, 401: Problem, 403: Problem };

  app.addHook('onRequest', async (request, reply) => {
    const user = await opts.authenticate(request);
    if (!user)
      return sendProblem(reply, 401, 'authentication required: send "Authorization: token <API key>"');
    if (!user.siteAdmin) return sendProblem(reply, 403, 'only site admins can read the delivery log');
  });

  app.get(
    '/deliveries',
    {
      schema: {
        summary: 'List deliveries (site admins)',
        description:
          'Newest first. Filter by user, recipient address, status or event; page with limit and cursor. Suppressed emails are listed with the reason they were not sent.',
        tags: ['deliveries'],
        security: [{ apiKeyToken: [] }],
        querystring: ListQuery,
        response: { 200: DeliveryList, ...errors },
      },
    },
    async (request) => {
      const q = request.query;
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (sql: string, value: unknown) => {
        params.push(value);
        where.push(sql.replace('?', `$${params.length}`));
      };
      if (q.userId) add('user_id = ?', q.userId);
      if (q.address) add('lower(recipient_address) = lower(?)', q.address);
      if (q.status) add('status = ?', q.status);
      if (q.eventId) add('event_id = ?', q.eventId);
      if (q.cursor) add('seq < ?', q.cursor);
      const limit = q.limit ?? 50;
      params.push(limit + 1);
      const { rows } = await opts.db.query<Row>(
        `SELECT ${COLUMNS} FROM deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY seq DESC LIMIT $${params.length}`,
        params,
      );
      const page = rows.slice(0, limit);
      return {
        deliveries: page.map(summary),
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
        security: [{ apiKeyToken: [] }],
        params: Type.Object({ id: Uuid }),
        response: { 200: DeliveryDetail, 404: Problem, ...errors },
      },
    },
    async (request, reply) => {
      const { rows } = await opts.db.query<Row>(`SELECT ${COLUMNS} FROM deliveries WHERE id = $1`, [
        request.params.id,
      ]);
      const row = rows[0];
      if (!row) return sendProblem(reply, 404, `no delivery ${request.params.id}`);
      const attempts = await opts.db.query<{
        attempt: number;
        worker: string;
        started_at: Date | string;
        finished_at: Date | string;
        outcome: 'sent' | 'deferred' | 'failed' | 'abandoned';
        smtp_response: string | null;
        response_code: number | null;
        error_step: string | null;
        error: string | null;
      }>('SELECT * FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt', [row.id]);
      return {
        ...summary(row),
        lastError: row.last_error,
        lastErrorStep: row.last_error_step,
        smtpResponse: row.smtp_response,
        attempts: attempts.rows.map((a) => ({
          attempt: a.attempt,
          worker: a.worker,
          startedAt: iso(a.started_at),
          finishedAt: iso(a.finished_at),
          outcome: a.outcome,
          smtpResponse: a.smtp_response,
          responseCode: a.response_code,
          errorStep: a.error_step,
          error: a.error,
        })),
      };
    },
  );
};
