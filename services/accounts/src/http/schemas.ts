import { EmailAddressInput } from '@sitemail/contracts';
import Type, { type TSchema } from 'typebox';
import { NOT_BLANK_PLAIN_TEXT_PATTERN, PLAIN_TEXT_PATTERN } from './input.ts';

/** RFC 9457 problem details: every error answer of the API. */
export const Problem = Type.Object(
  {
    type: Type.String({ description: 'A URI naming the kind of problem: /problems/<code>' }),
    title: Type.String(),
    status: Type.Integer({ minimum: 400, maximum: 599 }),
    code: Type.String({ description: 'Stable machine-readable code (e.g. email-taken, sent-too-recently)' }),
    detail: Type.String({ description: 'What went wrong, safe to show; never contains a secret' }),
    field: Type.Optional(Type.String({ description: 'The input field the problem is about' })),
    requestId: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

/** Error responses by status, to spread into a route's `response`. */
export const problems = {
  400: problemResponse('Invalid input; `field` names the offending field'),
  401: problemResponse('Missing or invalid credentials'),
  403: problemResponse('Authenticated, but not allowed'),
  404: problemResponse('No such user, address, key or link'),
  409: problemResponse('Duplicate, or a state or version conflict'),
  410: problemResponse('The user is deleted'),
  429: problemResponse('Rate limited, or a verification email was sent too recently'),
} as const;

type Status = keyof typeof problems;
export const problemsFor = <S extends Status>(...statuses: S[]) =>
  Object.fromEntries(statuses.map((s) => [s, problems[s]])) as Pick<typeof problems, S>;

export const json = <T extends TSchema>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export const Uuid = Type.String({ format: 'uuid' });
/** An address as stored (in views, and in lookups of stored addresses: the path and link query strings). */
export const Email = Type.String({
  format: 'email',
  maxLength: 254,
  description: 'An email address (compared lower-cased)',
});
/** An address a caller gives accounts to keep or look up: the product grammar (`parseEmailAddress`), stored canonical. */
export const NewEmail = Type.String({
  ...EmailAddressInput,
  description:
    'An email address: ASCII before the @ (no quoted parts), a fully qualified domain after it ' +
    '(internationalised domains are stored in their xn-- form); no address literals or control ' +
    'characters. Stored and compared lower-cased.',
});
/** Sourcegraph's username rule: letters, digits, and single dashes or dots inside. */
export const Username = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: '^[a-zA-Z0-9](?:[a-zA-Z0-9]|[-.](?=[a-zA-Z0-9]))*-?$',
  description: 'Letters, digits, and single dashes or dots between them',
});
export const Password = Type.String({ minLength: 12, maxLength: 256, description: 'At least 12 characters' });
/** Text other people see (in emails and events): no control or direction-override characters, bounded. */
const plainText = (maxLength: number, description: string) =>
  Type.String({ minLength: 1, maxLength, pattern: PLAIN_TEXT_PATTERN, description });
export const DisplayName = plainText(100, 'Shown to others; no control characters; at most 100 characters');
/** Organisation names go into invitation subjects: kept short, and not blank. */
export const OrganizationName = Type.String({
  ...plainText(64, 'An organisation name; no control characters; at most 64 characters'),
  pattern: NOT_BLANK_PLAIN_TEXT_PATTERN,
});
export const ApiKeyName = Type.String({
  ...plainText(64, 'A name for the key; no control characters; at most 64 characters'),
  pattern: NOT_BLANK_PLAIN_TEXT_PATTERN,
});
export const Time = Type.String({ format: 'date-time' });
export const UserIdParam = Type.String({
  pattern: '^(me|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$',
  description: 'A user id, or `me` for the caller',
});

/** An address notifications found undeliverable, with when and why. */
export const Undeliverable = Type.Object(
  {
    status: Type.Literal('undeliverable'),
    since: { ...Time, description: 'When the reply came' },
    cause: Type.Union([Type.Literal('smtp-reply'), Type.Literal('dsn')], {
      description: 'smtp-reply: refused during the SMTP session; dsn: a bounce report came back later',
    }),
    reply: Type.Object({
      code: Type.Union([Type.Integer(), Type.Null()], { description: 'The SMTP reply code, e.g. 550' }),
      enhancedStatus: Type.Union([Type.String(), Type.Null()], { description: 'RFC 3463, e.g. 5.1.1' }),
      text: Type.String({ description: 'The reply text (at most 512 characters); show it as text' }),
    }),
  },
  { additionalProperties: false },
);

export const EmailView = Type.Object({
  email: Email,
  verified: Type.Boolean(),
  primary: Type.Boolean(),
  verifiedAt: Type.Union([Time, Type.Null()]),
  verificationRequestedAt: Type.Union([Time, Type.Null()]),
  deliverability: Type.Union([Undeliverable, Type.Null()], {
    description:
      'What notifications told the fleet about this mailbox (notifications.address-events.v1): null unless a final reply said it does not exist; then product emails to it are suppressed (verification emails are still tried, and one accepted makes it deliverable again), until a site admin lifts it in notifications (DELETE /suppressions/{address})',
  }),
});

export const UserView = Type.Object({
  id: Uuid,
  username: Type.String(),
  displayName: Type.Union([Type.String(), Type.Null()]),
  siteAdmin: Type.Boolean(),
  origin: Type.Union([
    Type.Literal('builtin-signup'),
    Type.Literal('site-admin'),
    Type.Literal('external-provider'),
    Type.Literal('api'),
  ]),
  authProvider: Type.Object({ type: Type.String(), externalId: Type.Union([Type.String(), Type.Null()]) }),
  primaryEmail: Email,
  emails: Type.Array(EmailView),
  hasPassword: Type.Boolean(),
  createdAt: Time,
  version: Type.Integer({
    minimum: 1,
    description: 'Send as `If-Match: "<version>"` to refuse a stale write',
  }),
});

export const ApiKeyView = Type.Object({
  id: Uuid,
  name: Type.String(),
  createdAt: Time,
  createdBy: Uuid,
  revokedAt: Type.Union([Time, Type.Null()]),
});

export const InvitationView = Type.Object({
  id: Uuid,
  email: Email,
  organization: Type.Union([Type.String(), Type.Null()]),
  inviterId: Uuid,
  inviterUsername: Type.String(),
  inviteeUserId: Type.Union([Uuid, Type.Null()]),
  createdAt: Time,
  expiresAt: Time,
  acceptedAt: Type.Union([Time, Type.Null()]),
});

export const Message = Type.Object({ message: Type.String() });

/** `If-Match: "<version>"` on writes to a user: a different current version answers 409. */
export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({ pattern: '^(W/)?"?[0-9]+"?$', description: 'The user version last read, e.g. "3"' }),
  ),
});

export const parseIfMatch = (value: string | undefined): number | undefined =>
  value === undefined ? undefined : Number(value.replace(/^W\//, '').replaceAll('"', ''));
