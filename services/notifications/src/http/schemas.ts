import { problemProperties } from '@sitemail/service-kit';
import { REDACTED } from '@sitemail/site-config';
import Type, { type Static, type TProperties } from 'typebox';
import { type EmailKind, emailKinds } from '../domain/emails.ts';
import { type DeliveryStatus, deliveryStatuses } from '../store/deliveries.ts';
import { DeliveryBounce } from './bounces.ts';

// The delivery log (GET /deliveries, GET /deliveries/{id}).

export const Uuid = Type.String({ format: 'uuid' });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const Time = Type.String({ format: 'date-time' });

// Unsafe<…> gives the union built from the list its precise static type (a mapped array alone is typed never).
export const Status = Type.Unsafe<DeliveryStatus>(
  Type.Union(
    deliveryStatuses.map((s) => Type.Literal(s)),
    {
      description:
        'queued: waiting to be sent; sending: a worker holds it; deferred: will be retried; sent; failed: final; suppressed: never sent, see suppressionReason; awaiting-recipient: the recipient is not known (or not reachable) yet, decided again as their account events arrive until nextAttemptAt, then suppressed unless sendable',
    },
  ),
);

export const DeliverySummary = Type.Object(
  {
    id: Uuid,
    status: Status,
    emailKind: Type.Unsafe<EmailKind>(Type.Union(emailKinds.map((k) => Type.Literal(k)))),
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
    attemptCount: Type.Integer({
      description: 'Tries so far, throttled and paused ones included (one row each in attempts)',
    }),
    nextAttemptAt: Nullable(Time),
    giveUpAt: Nullable(
      Type.String({
        format: 'date-time',
        description:
          'When retries stop: the maximum age (email.delivery.maxAgeHours) or, sooner, the expiry of the link the email carries',
      }),
    ),
    failureReason: Nullable(
      Type.String({
        description:
          'Why a failed delivery failed: rejected (a final reply), bounced (accepted, then a delivery status notification said it failed: POST /bounces), link-expired (its link expired before it could be sent; never sent late), max-age (retried until email.delivery.maxAgeHours), max-attempts (the safety cap), render',
      }),
    ),
    replyScope: Nullable(
      Type.String({
        description:
          'Whose problem the last failed reply was (RFC 3463 classes): address (the mailbox does not take mail), message (this message was refused), sender (our credentials, TLS, relay or domain), transient',
      }),
    ),
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
    outcome: Type.Union(
      [
        Type.Literal('sent'),
        Type.Literal('deferred'),
        Type.Literal('failed'),
        Type.Literal('abandoned'),
        Type.Literal('throttled'),
        Type.Literal('paused'),
      ],
      {
        description:
          'throttled: the server limited the sending rate; paused: the relay refused the sender (credentials, TLS, relay denied) or did not answer, and the queue paused; either way the delivery went back to the queue and the try is not counted',
      },
    ),
    smtpResponse: Nullable(Type.String({ description: "The server's final reply when sent" })),
    responseCode: Nullable(Type.Integer()),
    errorStep: Nullable(
      Type.String({
        description: 'connect, tls, ehlo, auth, envelope, data, config, render, link-expired or worker',
      }),
    ),
    replyScope: Nullable(Type.String({ description: 'address, message, sender or transient' })),
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
    bounces: Type.Array(DeliveryBounce, {
      description:
        'Delivery status notifications (RFC 3464) posted for it after it was accepted (POST /bounces)',
    }),
  },
  { additionalProperties: false },
);

/** The largest `seq` there can be (a Postgres bigint); 19 digits reach past it. */
export const MAX_CURSOR = 9223372036854775807n;

export const ListQuery = Type.Object(
  {
    userId: Type.Optional(Uuid),
    address: Type.Optional(
      // No control characters: an address holds none, and Postgres text cannot hold a NUL.
      Type.String({
        minLength: 3,
        maxLength: 254,
        pattern: '^[^\\x00-\\x1f\\x7f]+$',
        description: 'Recipient address (any case)',
      }),
    ),
    status: Type.Optional(Status),
    eventId: Type.Optional(Uuid),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
    cursor: Type.Optional(
      Type.String({
        pattern: '^[0-9]{1,19}$',
        description: `nextCursor of the previous page (at most ${MAX_CURSOR})`,
      }),
    ),
  },
  { additionalProperties: false },
);

/** Whether this instance's delivery worker sends, or is paused and why. */
export const QueueStateSchema = Type.Object(
  {
    state: Type.Union([Type.Literal('sending'), Type.Literal('paused'), Type.Literal('no-worker')], {
      description:
        'paused: the SMTP server refuses this sender as configured, or does not answer; nothing is claimed, nothing fails, and it resumes by itself (site config change, a test email, a probe). no-worker: this instance runs no delivery worker',
    }),
    summary: Type.String({ description: 'In words, e.g. "paused: the SMTP server refuses …"' }),
    cause: Type.Optional(Type.Union([Type.Literal('sender'), Type.Literal('unreachable')])),
    reason: Type.Optional(Type.String()),
    since: Type.Optional(Time),
    nextProbeAt: Type.Optional(Time),
    probes: Type.Optional(Type.Integer({ minimum: 0, description: 'Probes failed since the pause began' })),
  },
  { additionalProperties: false },
);

export const DeliveryList = Type.Object(
  {
    queue: Type.String({ description: 'This instance\'s delivery queue: "sending", or "paused: <reason>"' }),
    deliveries: Type.Array(DeliverySummary),
    nextCursor: Type.Optional(
      Type.String({ description: 'Pass as cursor for the next (older) page; absent on the last page' }),
    ),
  },
  { additionalProperties: false },
);

// POST /test-email

const NoLineBreaks = '^[^\\r\\n]*$';
const HostName = '^[^\\s/]+$';
const Authentication = Type.Union([
  Type.Literal('PLAIN'),
  Type.Literal('CRAM-MD5'),
  Type.Literal('LOGIN'),
  Type.Literal('XOAUTH2'),
  Type.Literal('none'),
]);
const Field = (maxLength = 2048) => Type.String({ minLength: 1, maxLength, pattern: NoLineBreaks });
const Secret = (maxLength = 4096) =>
  Type.String({ minLength: 1, maxLength, description: `"${REDACTED}" takes the saved value` });

const UnsavedOAuth2 = Type.Object(
  {
    tokenURL: Field(),
    clientID: Field(512),
    clientSecret: Type.Optional(Secret()),
    scope: Type.Optional(Field()),
    grant: Type.Union([
      Type.Literal('client_credentials'),
      Type.Literal('refresh_token'),
      Type.Literal('jwt_bearer'),
    ]),
    refreshToken: Type.Optional(Secret()),
    privateKey: Type.Optional(Secret(16_384)),
    keyID: Type.Optional(Field(512)),
    certificateThumbprint: Type.Optional(Field(64)),
  },
  {
    additionalProperties: false,
    description: `\`email.smtp.oauth2\` for XOAUTH2. A secret reading "${REDACTED}" takes the saved value only toward the saved server and the saved token endpoint.`,
  },
);

const UnsavedSmtp = Type.Object(
  {
    authentication: Type.Optional(Authentication),
    username: Type.Optional(Type.String({ maxLength: 512, pattern: NoLineBreaks })),
    password: Type.Optional(
      Type.String({ maxLength: 512, description: `A value reading "${REDACTED}" takes the saved password` }),
    ),
    oauth2: Type.Optional(UnsavedOAuth2),
    host: Type.String({ minLength: 1, maxLength: 255, pattern: HostName }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    domain: Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: HostName })),
    noVerifyTLS: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    description: `An unsaved \`email.smtp\`, to test before saving; never persisted. Any string field reading "${REDACTED}" takes the saved value.`,
  },
);

export const TestEmailBody = Type.Object(
  {
    to: Type.String({
      minLength: 3,
      maxLength: 254,
      description: 'Exactly one recipient address',
      examples: ['a@b.example'],
    }),
    smtp: Type.Optional(UnsavedSmtp),
    'email.address': Type.Optional(
      Type.String({
        maxLength: 254,
        description: 'An unsaved From address (a value reading REDACTED takes the saved one)',
      }),
    ),
    'email.senderName': Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'An unsaved sender name' }),
    ),
  },
  { additionalProperties: false },
);
export type TestEmailBody = Static<typeof TestEmailBody>;

const Step = Type.Union(
  [
    Type.Literal('config'),
    Type.Literal('connect'),
    Type.Literal('tls'),
    Type.Literal('ehlo'),
    Type.Literal('auth'),
    Type.Literal('envelope'),
    Type.Literal('data'),
  ],
  {
    description:
      'The step that failed: config (nothing attempted), connect, tls, ehlo, auth, envelope (MAIL/RCPT), data',
  },
);

export const TestEmailSent = Type.Object(
  {
    message: Type.String({
      examples: ['Sent test email to "a@b.example" successfully! Please check it was received.'],
    }),
    testId: Type.String({ description: 'Short ID also in the subject and body of the email' }),
    messageId: Type.String({ description: 'Message-ID header of the email sent' }),
  },
  { additionalProperties: false, description: 'Sent: the server accepted the test email' },
);

// Every error of /test-email is a problem body (as everywhere in both services) that keeps the
// route's documented `message` beside the standard members.
const problemContent = (description: string, properties: TProperties) => ({
  description,
  content: {
    'application/problem+json': {
      schema: Type.Object({ ...problemProperties, ...properties }, { additionalProperties: false }),
    },
  },
});

const Message = Type.String({ description: 'What happened, in the words of the admin UI' });

export const testEmailFailed = (description: string) =>
  problemContent(description, {
    message: Type.String({
      examples: ['Failed to send test email: mail: 535 5.7.8 Authentication failed'],
    }),
    testId: Type.String(),
    step: Step,
    smtpResponse: Type.Optional(Type.String({ description: "The server's reply, secrets removed" })),
    responseCode: Type.Optional(Type.Integer({ description: 'SMTP reply code' })),
    permanent: Type.Boolean({
      description: 'False when retrying later may succeed (4xx, timeouts, connection failures)',
    }),
  });

export const errorMessage = (description: string) => problemContent(description, { message: Message });
