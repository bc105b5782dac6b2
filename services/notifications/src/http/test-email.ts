import { type TypeBoxTypeProvider, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import type { SiteConfig } from '@sitemail/site-config';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { effectiveConfig, NothingSaved, newTestId } from '../application/test-email.ts';
import { renderTestEmail } from '../domain/templates/test-email.ts';
import { createMailer } from '../smtp/mailer.ts';
import { type Mailer, type MailerFactory, SmtpSendError } from '../smtp/types.ts';
import { errorMessage, TestEmailBody, TestEmailSent, testEmailFailed } from './schemas.ts';
import { checkHeaderFields, describeValidationError } from './test-email-input.ts';

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
