import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Queryable } from '@sitemail/db';
import { defaultProblemResponses as problems } from '@sitemail/service-kit';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import {
  findSuppression,
  liftSuppression,
  listSuppressions,
  type SuppressionRow,
} from '../store/suppressions.ts';
import { forbidden, notFound, unauthenticated } from './problem.ts';

export interface SuppressionRoutesOptions {
  db: Queryable;
  authenticate: (request: FastifyRequest) => Promise<{ userId: string; siteAdmin: boolean } | null>;
  clock?: () => Date;
}

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });
// No control characters: an address holds none, and Postgres text cannot hold a NUL.
const Address = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^[^\\x00-\\x1f\\x7f]+$',
  description: 'The address (any case; the list keeps it lower-cased)',
});

export const Suppression = Type.Object(
  {
    address: Type.String({ description: 'Lower-cased' }),
    active: Type.Boolean({ description: 'True while product emails to the address are suppressed' }),
    reply: Type.String({ description: 'The SMTP reply that put the address on the list' }),
    responseCode: Nullable(Type.Integer()),
    suppressedAt: Time,
    deliveryId: Nullable(
      Type.String({ format: 'uuid', description: 'The delivery that got the reply (GET /deliveries/{id})' }),
    ),
    emailKind: Nullable(Type.String()),
    messageId: Nullable(Type.String()),
    liftedAt: Nullable(Time),
    liftedBy: Nullable(
      Type.String({
        description:
          'admin:<user id> (lifted through DELETE), or delivered:<delivery id> (an email to it was accepted)',
      }),
    ),
  },
  { additionalProperties: false },
);

const SuppressionList = Type.Object(
  {
    suppressions: Type.Array(Suppression),
    nextCursor: Type.Optional(
      Type.String({ description: 'Pass as cursor for the next page; absent on the last' }),
    ),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    includeLifted: Type.Optional(Type.Boolean({ default: false, description: 'Lifted entries too' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional({ ...Address, description: 'nextCursor of the previous page' }),
  },
  { additionalProperties: false },
);

const iso = (t: Date | string) => new Date(t).toISOString();

const view = (r: SuppressionRow): Static<typeof Suppression> => ({
  address: r.address,
  active: r.lifted_at === null,
  reply: r.reply,
  responseCode: r.response_code,
  suppressedAt: iso(r.suppressed_at),
  deliveryId: r.delivery_id,
  emailKind: r.email_kind,
  messageId: r.message_id,
  liftedAt: r.lifted_at === null ? null : iso(r.lifted_at),
  liftedBy: r.lifted_by,
});

/**
 * The suppression list for site admins (issue 11 item 4): addresses a final reply said have no
 * mailbox. Product emails to them are suppressed `address-undeliverable`; verification and
 * set-password emails are still tried, and one accepted lifts the entry; an admin lifts it here.
 */
export const suppressionRoutes: FastifyPluginAsync<SuppressionRoutesOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const errors = { 400: problems[400], 401: problems[401], 403: problems[403], 500: problems[500] };
  const clock = opts.clock ?? (() => new Date());
  const admins = new WeakMap<FastifyRequest, string>();

  // Credentials before anything else, as the delivery log: an anonymous caller learns nothing.
  app.addHook('onRequest', async (request) => {
    const user = await opts.authenticate(request);
    if (!user) throw unauthenticated();
    if (!user.siteAdmin) throw forbidden('only site admins can read or change the suppression list');
    admins.set(request, user.userId);
  });

  app.get(
    '/suppressions',
    {
      schema: {
        summary: 'List suppressed addresses (site admins)',
        description:
          'Addresses on the suppression list, by address; active ones only unless includeLifted. Each names the reply, time and delivery that put it there.',
        tags: ['suppressions'],
        security: [{ apiKey: [] }],
        querystring: ListQuery,
        response: { 200: SuppressionList, ...errors },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const rows = await listSuppressions(opts.db, {
        includeLifted: request.query.includeLifted ?? false,
        after: request.query.cursor?.toLowerCase(),
        limit: limit + 1,
      });
      const page = rows.slice(0, limit);
      return {
        suppressions: page.map(view),
        ...(rows.length > limit ? { nextCursor: page.at(-1)!.address } : {}),
      };
    },
  );

  app.get(
    '/suppressions/:address',
    {
      schema: {
        summary: 'One address on the suppression list (site admins)',
        description: 'Active or lifted; 404 when the address was never suppressed.',
        tags: ['suppressions'],
        security: [{ apiKey: [] }],
        params: Type.Object({ address: Address }),
        response: { 200: Suppression, 404: problems[404], ...errors },
      },
    },
    async (request) => {
      const row = await findSuppression(opts.db, request.params.address);
      if (!row) throw notFound(`${request.params.address} is not on the suppression list`, 'address');
      return view(row);
    },
  );

  app.delete(
    '/suppressions/:address',
    {
      schema: {
        summary: 'Lift a suppression (site admins)',
        description:
          'Product emails to the address are sent again; the entry stays, lifted, naming the admin. 404 when the address is not suppressed now.',
        tags: ['suppressions'],
        security: [{ apiKey: [] }],
        params: Type.Object({ address: Address }),
        response: { 200: Suppression, 404: problems[404], ...errors },
      },
    },
    async (request) => {
      const address = request.params.address;
      if (!(await liftSuppression(opts.db, address, `admin:${admins.get(request)}`, clock()))) {
        throw notFound(
          `${address} is not suppressed now (GET /suppressions/{address} shows its entry)`,
          'address',
        );
      }
      return view((await findSuppression(opts.db, address))!);
    },
  );
};
