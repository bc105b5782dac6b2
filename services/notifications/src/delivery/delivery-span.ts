import { SpanStatusCode, trace } from '@opentelemetry/api';
import { contextOfTraceparent } from '@sitemail/service-kit';
import type { AttemptOutcome, ClaimedDelivery } from '../store/queue.ts';

const tracer = trace.getTracer('sitemail-notifications');

/**
 * Runs one attempt at a delivery in a span continuing the trace its row kept (the handling of the
 * event that queued it, itself continuing the request in accounts), so the SMTP send and the
 * email's trace id header belong to that trace; a row without one starts a trace of its own. The
 * attributes say which delivery and how it ended, never its address or the server's words.
 */
export function inDeliverySpan(
  c: ClaimedDelivery,
  attempt: () => Promise<AttemptOutcome>,
): Promise<AttemptOutcome> {
  return tracer.startActiveSpan(
    `deliver ${c.message.kind}`,
    {
      attributes: {
        'sitemail.delivery.id': c.id,
        'sitemail.delivery.attempt': c.attempt,
        'sitemail.email.kind': c.message.kind,
        'sitemail.event.id': c.eventId,
      },
    },
    contextOfTraceparent(c.traceparent),
    async (span) => {
      try {
        const outcome = await attempt();
        span.setAttribute('sitemail.delivery.outcome', outcome.status);
        if (outcome.status !== 'sent') {
          if ('step' in outcome && outcome.step) span.setAttribute('sitemail.delivery.step', outcome.step);
          if (outcome.status === 'failed') span.setStatus({ code: SpanStatusCode.ERROR });
        }
        return outcome;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? 'Error' });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
