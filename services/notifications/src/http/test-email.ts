import { randomBytes } from 'node:crypto';
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { REDACTED, type SiteConfig, type SmtpConfig, senderName } from '@sitemail/site-config';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { createMailer } from '../smtp/mailer.ts';
import { type Mailer, type MailerFactory, SmtpSendError } from '../smtp/types.ts';

/**
 * `POST /test-email` (DESIGN.md "REST: POST /test-email"): a site admin sends a test email with the
 * saved SMTP settings, or with unsaved ones from the body to try them before saving.
 *
 * Statuses: 200 sent; 400 invalid input (the message names the field); 401 no or bad credentials;
 * 403 not a site admin; 422 the config lacks `email.smtp` or `email.address` (or credentials for
 * its authentication), nothing was attempted; 502 the SMTP server or the connection to it failed,
 * `step` says where and `smtpResponse` what the server answered.
 */

export interface TestEmailOptions {
  siteConfig: () => SiteConfig;
  authenticate: (request: FastifyRequest) => Promise<{ userId: string; siteAdmin: boolean } | null>;
  /** The service's shared mailer for the saved config; used when the body carries no unsaved settings. */
  mailer?: Mailer;
  /** Builds the throwaway mailer for unsaved settings (and for saved ones when `mailer` is absent). */
  mailerFactory?: MailerFactory;
  now?: () => Date;
}

const NoLineBreaks = '^[^\\r\\n]*$';
const HostName = '^[^\\s/]+$';
// One address, no display name, no list: the characters that would start a second address, a
// display name, a comment or a header are all excluded.
const SingleAddress = '^[^\\s@<>(),;:"\\[\\]\\\\]+@[^\\s@<>(),;:"\\[\\]\\\\]+$';

const Authentication = Type.Union([Type.Literal('PLAIN'), Type.Literal('CRAM-MD5'), Type.Literal('none')]);

const UnsavedSmtp = Type.Object(
  {
    authentication: Type.Optional(Authentication),
    username: Type.Optional(Type.String({ maxLength: 512, pattern: NoLineBreaks })),
    password: Type.Optional(
      Type.String({ maxLength: 512, description: `A value reading "${REDACTED}" takes the saved password` }),
    ),
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

const TestEmailSent = Type.Object(
  {
    message: Type.String({
      examples: ['Sent test email to "a@b.example" successfully! Please check it was received.'],
    }),
    testId: Type.String({ description: 'Short ID also in the subject and body of the email' }),
    messageId: Type.String({ description: 'Message-ID header of the email sent' }),
  },
  { additionalProperties: false, description: 'Sent: the server accepted the test email' },
);

const testEmailFailed = (description: string) =>
  Type.Object(
    {
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
    },
    { additionalProperties: false, description },
  );

const errorMessage = (description: string) =>
  Type.Object(
    {
      message: Type.String(),
      field: Type.Optional(Type.String({ description: 'The body field the problem is about' })),
    },
    { additionalProperties: false, description },
  );

const INVALID = (field: string, problem: string) => ({ field, message: `invalid "${field}": ${problem}` });

/** The first validation problem, worded for an admin and naming the field. */
export function describeValidationError(
  errors: readonly { keyword: string; instancePath: string; params: Record<string, unknown> }[],
): { field?: string; message: string } {
  const field = (path: string) => path.split('/').filter(Boolean).join('.');
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const names = (unknown.params.additionalProperties as string[] | undefined) ?? [];
    const prefix = field(unknown.instancePath);
    const f = [prefix, names[0] ?? ''].filter(Boolean).join('.');
    return { field: f, message: `unknown field "${f}"` };
  }
  const missing = errors.find((e) => e.keyword === 'required');
  if (missing) {
    const names = (missing.params.requiredProperties as string[] | undefined) ?? [];
    const f = [field(missing.instancePath), names[0] ?? ''].filter(Boolean).join('.');
    return { field: f, message: `missing field "${f}"` };
  }
  const first = errors.find((e) => e.keyword !== 'boolean' && e.keyword !== 'const') ?? errors[0];
  if (!first) return { message: 'invalid request body' };
  const f = field(first.instancePath);
  if (!f) return { message: 'the request body must be a JSON object' };
  if (first.keyword === 'anyOf') {
    const allowed = errors
      .filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath)
      .map((e) => JSON.stringify(e.params.allowedValue));
    return INVALID(f, `must be one of ${allowed.join(', ')}`);
  }
  const p = first.params;
  switch (first.keyword) {
    case 'type':
      return INVALID(f, `must be ${p.type === 'integer' ? 'an integer' : `a ${String(p.type)}`}`);
    case 'minimum':
    case 'maximum':
      return INVALID(f, `must be ${String(p.comparison)} ${String(p.limit)}`);
    case 'minLength':
      return INVALID(f, `must have at least ${String(p.limit)} characters`);
    case 'maxLength':
      return INVALID(f, `must have at most ${String(p.limit)} characters`);
    case 'pattern':
      return INVALID(f, 'has characters that are not allowed here (spaces, line breaks or slashes)');
    default:
      return INVALID(f, 'is not valid');
  }
}

const hasLineBreak = (s: string) => /[\r\n]/.test(s);

/** Checks that header-bound fields hold one address and no line breaks (header injection). */
export function checkHeaderFields(body: TestEmailBody): { field: string; message: string } | undefined {
  const address = (field: string, value: string) => {
    if (hasLineBreak(value)) {
      return { field, message: `invalid "${field}": must not contain line breaks (header injection)` };
    }
    if (!new RegExp(SingleAddress).test(value.trim())) {
      return { field, message: `invalid "${field}": must be exactly one email address, such as a@b.example` };
    }
    return undefined;
  };
  const to = address('to', body.to);
  if (to) return to;
  const from = body['email.address'];
  if (from !== undefined && from !== REDACTED) {
    const bad = address('email.address', from);
    if (bad) return bad;
  }
  const name = body['email.senderName'];
  if (name !== undefined && hasLineBreak(name)) {
    return {
      field: 'email.senderName',
      message: 'invalid "email.senderName": must not contain line breaks (header injection)',
    };
  }
  return undefined;
}

/** Thrown when a REDACTED field has no saved value to stand for. */
class NothingSaved extends Error {
  constructor(readonly field: string) {
    super(`invalid "${field}": reads "${REDACTED}" but no value is saved for it`);
  }
}

function unredact<T>(value: T, saved: T | undefined, field: string): T {
  if (value !== REDACTED) return value;
  if (saved === undefined) throw new NothingSaved(field);
  return saved;
}

/** The config to test: the saved one with the body's unsaved settings over it; REDACTED takes the saved value. */
export function effectiveConfig(saved: SiteConfig, body: TestEmailBody): SiteConfig {
  const config: SiteConfig = { ...saved };
  if (body.smtp) {
    const was = saved['email.smtp'];
    const b = body.smtp;
    const smtp: SmtpConfig = {
      authentication: b.authentication ?? 'PLAIN',
      host: unredact(b.host, was?.host, 'smtp.host'),
      port: b.port,
      noVerifyTLS: b.noVerifyTLS ?? false,
    };
    if (b.username !== undefined) smtp.username = unredact(b.username, was?.username, 'smtp.username');
    if (b.password !== undefined) smtp.password = unredact(b.password, was?.password, 'smtp.password');
    if (b.domain !== undefined) smtp.domain = unredact(b.domain, was?.domain, 'smtp.domain');
    config['email.smtp'] = smtp;
  }
  if (body['email.address'] !== undefined) {
    config['email.address'] = unredact(body['email.address'], saved['email.address'], 'email.address');
  }
  if (body['email.senderName'] !== undefined) {
    config['email.senderName'] = unredact(
      body['email.senderName'],
      saved['email.senderName'],
      'email.senderName',
    );
  }
  return config;
}

/** A short ID an admin can read and match: 8 characters of Crockford base32 (no I, L, O, U). */
export function newTestId(bytes: Buffer = randomBytes(5)): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.slice(0, 8);
}

const escapeHtml = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** The test email: the test ID in subject and body, so the admin can match what arrives. */
export function renderTestEmail(config: SiteConfig, to: string, testId: string, now: Date) {
  const sender = senderName(config);
  const subject = `TEST: email sent from ${sender} [${testId}]`;
  const lines = [
    `This is a test email from ${sender} (${config.externalURL}).`,
    'A site admin sent it to check the email (SMTP) settings. If you received it, sending email works.',
    '',
    `Test ID: ${testId}`,
    `Sent at: ${now.toISOString()}`,
  ];
  const html = [
    `<p>This is a test email from ${escapeHtml(sender)} (${escapeHtml(config.externalURL)}).</p>`,
    '<p>A site admin sent it to check the email (SMTP) settings. If you received it, sending email works.</p>',
    `<p>Test ID: <strong>${escapeHtml(testId)}</strong><br>Sent at: ${escapeHtml(now.toISOString())}</p>`,
  ].join('\n');
  return { to, subject, text: `${lines.join('\n')}\n`, html, headers: { 'X-Sitemail-Test-Id': testId } };
}

export const testEmailRoutes: FastifyPluginAsync<TestEmailOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const now = opts.now ?? (() => new Date());
  const factory: MailerFactory =
    opts.mailerFactory ?? ((config) => createMailer(config, { logger: fastify.log }));

  app.post(
    '/test-email',
    {
      schema: {
        summary: 'Send a test email (site admins)',
        description:
          'Sends a test email with the saved SMTP settings, or with unsaved ones given in the body (never persisted; a field reading "REDACTED" takes the saved value). The test ID is in the subject, the body and the response.',
        tags: ['admin'],
        body: TestEmailBody,
        response: {
          200: TestEmailSent,
          400: errorMessage(
            'Invalid input (not exactly one address, a line break in a header field, an unknown field); `field` names it',
          ),
          401: errorMessage('No credentials, or unknown ones'),
          403: errorMessage('Not a site admin'),
          422: testEmailFailed(
            'Nothing attempted: the config lacks email.smtp or email.address (step "config")',
          ),
          500: errorMessage('Unexpected failure; no details are given, so no secret can leak'),
          502: testEmailFailed(
            'The SMTP server or the connection to it failed: `step` says where, `smtpResponse` what it answered',
          ),
        },
      },
      // TypeBox checks the body as written: the app's Ajv would drop unknown fields
      // (removeAdditional) and coerce types, and an unknown field must be a 400
      validatorCompiler: TypeBoxValidatorCompiler,
      attachValidation: true,
      onRequest: async (request, reply) => {
        const user = await opts.authenticate(request);
        if (!user) return reply.code(401).send({ message: 'Authentication required' });
        if (!user.siteAdmin)
          return reply.code(403).send({ message: 'Only site admins can send a test email' });
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        const validation = (request.validationError as { validation?: unknown }).validation;
        const errors = Array.isArray(validation) ? validation : [];
        return reply.code(400).send(describeValidationError(errors));
      }
      const body = request.body;
      const bad = checkHeaderFields(body);
      if (bad) return reply.code(400).send(bad);

      const saved = opts.siteConfig();
      let config: SiteConfig;
      try {
        config = effectiveConfig(saved, body);
      } catch (err) {
        if (err instanceof NothingSaved)
          return reply.code(400).send({ field: err.field, message: err.message });
        throw err;
      }
      const unsaved =
        body.smtp !== undefined ||
        body['email.address'] !== undefined ||
        body['email.senderName'] !== undefined;
      const shared = unsaved ? undefined : opts.mailer;
      const mailer = shared ?? factory(() => config);

      const testId = newTestId();
      const to = body.to.trim();
      try {
        const sent = await mailer.send(renderTestEmail(config, to, testId, now()));
        request.log.info({ testId, unsaved }, 'test email sent');
        return reply.code(200).send({
          message: `Sent test email to "${to}" successfully! Please check it was received.`,
          testId,
          messageId: sent.messageId,
        });
      } catch (err) {
        if (!(err instanceof SmtpSendError)) {
          request.log.error(
            { testId, errName: err instanceof Error ? err.name : typeof err },
            'test email crashed',
          );
          return reply.code(500).send({ message: 'Failed to send test email: internal error' });
        }
        request.log.info(
          { testId, unsaved, step: err.step, responseCode: err.responseCode },
          'test email failed',
        );
        return reply.code(err.step === 'config' ? 422 : 502).send({
          message: `Failed to send test email: ${err.message}`,
          testId,
          step: err.step,
          permanent: err.permanent,
          ...(err.smtpResponse !== undefined ? { smtpResponse: err.smtpResponse } : {}),
          ...(err.responseCode !== undefined ? { responseCode: err.responseCode } : {}),
        });
      } finally {
        if (!shared) await mailer.close();
      }
    },
  );
};
