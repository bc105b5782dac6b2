import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { type Mailer, type OutgoingEmail, type SentEmail, SmtpSendError } from './types.ts';

/**
 * The header every email carries with the trace id (32 hex digits) of the trace that caused it:
 * the request in accounts, through the event and its delivery, to this send. An admin holding an
 * email (or a bounce quoting its headers) can look the trace up; a test email names the trace of
 * its `POST /test-email`.
 */
export const TRACE_ID_HEADER = 'X-Sitemail-Trace-Id';

const tracer = trace.getTracer('sitemail-notifications');

const replyCode = (response: string) => {
  const code = Number(/^\d{3}/.exec(response)?.[0]);
  return Number.isInteger(code) ? code : undefined;
};

/**
 * Runs one SMTP send in a CLIENT span, a child of the active context (the delivery's or the test
 * email request's), and gives the email the trace id header. Attributes say how it ended (reply
 * code, the failing step), never the recipient or what the server said about it.
 */
export function inSmtpSendSpan(
  email: OutgoingEmail,
  send: (email: OutgoingEmail) => Promise<SentEmail>,
): Promise<SentEmail> {
  return tracer.startActiveSpan('smtp send', { kind: SpanKind.CLIENT }, async (span) => {
    const { traceId } = span.spanContext();
    const traced = trace.isSpanContextValid(span.spanContext())
      ? { ...email, headers: { ...email.headers, [TRACE_ID_HEADER]: traceId } }
      : email;
    try {
      const sent = await send(traced);
      const code = replyCode(sent.response);
      if (code !== undefined) span.setAttribute('smtp.response.code', code);
      return sent;
    } catch (err) {
      if (err instanceof SmtpSendError) {
        span.setAttributes({
          'smtp.step': err.step,
          'smtp.permanent': err.permanent,
          ...(err.responseCode !== undefined ? { 'smtp.response.code': err.responseCode } : {}),
        });
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? 'Error' });
      throw err;
    } finally {
      span.end();
    }
  });
}

/** The mailer with every send in `inSmtpSendSpan` (verify, the paused queue's probe, as it is). */
export function tracedMailer(mailer: Mailer): Mailer {
  const traced: Mailer = {
    send: (email) => inSmtpSendSpan(email, (withHeader) => mailer.send(withHeader)),
    close: () => mailer.close(),
  };
  const verify = mailer.verify?.bind(mailer);
  if (verify) traced.verify = verify;
  return traced;
}
