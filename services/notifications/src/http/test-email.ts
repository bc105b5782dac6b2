import rateLimit from '@fastify/rate-limit';
import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { HttpProblem, sendProblem } from '@sitemail/service-kit';
import type { SiteConfig } from '@sitemail/site-config';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import {
  effectiveConfig,
  newTestId,
  RedactedRefused,
  readTestAddresses,
  testSendLog,
} from '../application/test-email.ts';
import { renderTestEmail } from '../domain/templates/test-email.ts';
import { createMailer } from '../smtp/mailer.ts';
import { type Mailer, type MailerFactory, SmtpSendError } from '../smtp/types.ts';
import { errorMessage, TestEmailBody, TestEmailSent, testEmailFailed } from './schemas.ts';
import { describeValidationError } from './test-email-input.ts';

/**
 * `POST /test-email` (docs/architecture.md, "notifications"): a site admin sends a test email with the
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
  /** Test emails per admin (user id) per window; default 10 a minute, which bounds port scanning. */
  rateLimit?: { max: number; timeWindowMs: number };
}

function withMessage(status: number, payload: unknown): unknown {
  if (status < 400 || typeof payload !== 'object' || payload === null || 'message' in payload) return payload;
  const detail = (payload as { detail?: unknown }).detail;
  return { ...payload, message: typeof detail === 'string' ? detail : 'Failed to send test email' };
}

/** A problem body (as every error of both services) keeping the route's documented `message`. */
function answer(
  reply: FastifyReply,
  status: number,
  code: string,
  message: string,
  opts: { field?: string | undefined; detail?: string; more?: Record<string, unknown> } = {},
): FastifyReply {
  return sendProblem(reply, {
    status,
    code,
    detail: opts.detail ?? message,
    ...(opts.field ? { field: opts.field } : {}),
    extra: { message, ...opts.more },
  });
}

export const testEmailRoutes: FastifyPluginAsync<TestEmailOptions> = async (fastify, opts) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const now = opts.now ?? (() => new Date());
  const factory: MailerFactory =
    opts.mailerFactory ?? ((config) => createMailer(config, { logger: fastify.log }));
  const limit = opts.rateLimit ?? { max: 10, timeWindowMs: 60_000 };
  // who is asking, set once the credentials are checked; the rate limit and the log key on it
  const admins = new WeakMap<FastifyRequest, string>();
  await fastify.register(rateLimit, { global: false });

  app.post(
    '/test-email',
    {
      schema: {
        summary: 'Send a test email (site admins)',
        description:
          'Sends a test email with the saved SMTP settings, or with unsaved ones given in the body (never persisted; a field reading "REDACTED" takes the saved value). The test ID is in the subject, the body and the response.',
        tags: ['admin'],
        security: [{ apiKey: [] }],
        body: TestEmailBody,
        response: {
          200: TestEmailSent,
          400: errorMessage(
            'Invalid input (not exactly one address by the product grammar, a line break in a header field, an unknown field, a REDACTED credential toward another server than the saved one); `field` names it',
          ),
          401: errorMessage('No credentials, or unknown ones'),
          403: errorMessage('Not a site admin'),
          429: errorMessage('Too many test emails from this admin; `retry-after` says when to try again'),
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
      // Errors answered by the service kit's handler (malformed JSON, a body too large, a crash)
      // keep this route's documented `message` too.
      preSerialization: async (_request, reply, payload) => withMessage(reply.statusCode, payload),
      onRequest: async (request, reply) => {
        const user = await opts.authenticate(request);
        if (!user) return answer(reply, 401, 'unauthenticated', 'Authentication required');
        if (!user.siteAdmin) return answer(reply, 403, 'forbidden', 'Only site admins can send a test email');
        admins.set(request, user.userId);
      },
      config: {
        rateLimit: {
          max: limit.max,
          timeWindow: limit.timeWindowMs,
          // after onRequest, so the bucket is the admin's user id (per admin, whatever key or IP)
          hook: 'preHandler',
          keyGenerator: (request: FastifyRequest) => `admin:${admins.get(request) ?? request.ip}`,
          errorResponseBuilder: (_request: FastifyRequest, context: { after: string }) =>
            new HttpProblem({
              status: 429,
              code: 'rate-limited',
              detail: `too many test emails: at most ${limit.max} per ${limit.timeWindowMs / 1000} s per admin; retry in ${context.after}`,
            }),
        },
      },
    },
    async (request, reply) => {
      if (request.validationError) {
        const validation = (request.validationError as { validation?: unknown }).validation;
        const errors = Array.isArray(validation) ? validation : [];
        const bad = describeValidationError(errors);
        return answer(reply, 400, 'invalid-input', bad.message, { field: bad.field });
      }
      const body = request.body;
      const addresses = readTestAddresses(body);
      if (!addresses.ok)
        return answer(reply, 400, 'invalid-input', addresses.message, { field: addresses.field });
      const adminUserId = admins.get(request) ?? '';

      const saved = opts.siteConfig();
      let config: SiteConfig;
      try {
        config = effectiveConfig(saved, {
          ...body,
          ...(addresses.from ? { 'email.address': addresses.from } : {}),
        });
      } catch (err) {
        if (err instanceof RedactedRefused) {
          request.log.info(
            testSendLog(adminUserId, saved, 'refused', { field: err.field }),
            'test email refused',
          );
          return answer(reply, 400, 'invalid-input', err.message, { field: err.field });
        }
        throw err;
      }
      const unsaved =
        body.smtp !== undefined ||
        body['email.address'] !== undefined ||
        body['email.senderName'] !== undefined;
      const shared = unsaved ? undefined : opts.mailer;
      const mailer = shared ?? factory(() => config);

      const testId = newTestId();
      const to = addresses.to;
      try {
        const sent = await mailer.send(renderTestEmail(config, to, testId, now()));
        request.log.info(testSendLog(adminUserId, config, 'sent', { testId, unsaved }), 'test email sent');
        return reply.code(200).send({
          message: `Sent test email to "${to}" successfully! Please check it was received.`,
          testId,
          messageId: sent.messageId,
        });
      } catch (err) {
        if (!(err instanceof SmtpSendError)) {
          request.log.error(
            {
              ...testSendLog(adminUserId, config, 'failed', { testId }),
              errName: err instanceof Error ? err.name : typeof err,
            },
            'test email crashed',
          );
          return answer(reply, 500, 'internal', 'Failed to send test email: internal error', {
            detail: `internal error; quote request id ${request.id} when reporting it`,
          });
        }
        request.log.info(
          testSendLog(adminUserId, config, 'failed', {
            testId,
            unsaved,
            step: err.step,
            ...(err.responseCode !== undefined ? { responseCode: err.responseCode } : {}),
          }),
          'test email failed',
        );
        const nothingTried = err.step === 'config';
        return answer(
          reply,
          nothingTried ? 422 : 502,
          nothingTried ? 'email-not-configured' : 'smtp-failed',
          `Failed to send test email: ${err.message}`,
          {
            more: {
              testId,
              step: err.step,
              permanent: err.permanent,
              ...(err.smtpResponse !== undefined ? { smtpResponse: err.smtpResponse } : {}),
              ...(err.responseCode !== undefined ? { responseCode: err.responseCode } : {}),
            },
          },
        );
      } finally {
        if (!shared) await mailer.close();
      }
    },
  );
};
