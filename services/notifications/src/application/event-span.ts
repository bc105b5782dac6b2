import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { BusMessage } from '@sitemail/bus';
import type { FleetEvent } from '@sitemail/contracts';
import { contextOfTraceparent } from '@sitemail/service-kit';
import type { HandledEvent } from './handle-event.ts';

const tracer = trace.getTracer('sitemail-notifications');

/**
 * Runs the handling of one event in a CONSUMER span that continues the producer's `traceparent`
 * header (accounts' relay copies it from the outbox row; a fleet producer may send none, and then
 * the event starts a trace of its own). The span is active while it runs, so the deliveries it
 * creates keep its context for the send. Attributes name the event and what was decided, never an
 * address: a suppression's reason and an email's kind are enough to follow it.
 */
export function inEventSpan(
  message: BusMessage,
  event: FleetEvent,
  handle: () => Promise<HandledEvent>,
): Promise<HandledEvent> {
  return tracer.startActiveSpan(
    `handle ${event.type}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.destination.name': message.topic,
        'messaging.destination.partition.id': String(message.partition),
        'messaging.kafka.offset': Number(message.offset),
        'sitemail.event.type': event.type,
        'sitemail.event.id': event.id,
      },
    },
    contextOfTraceparent(message.headers.traceparent),
    async (span) => {
      try {
        const handled = await handle();
        span.setAttributes({
          'sitemail.event.duplicate': handled.duplicate,
          'sitemail.deliveries.queued': handled.queued,
          'sitemail.deliveries.released': handled.released,
          'sitemail.decisions': handled.decisions.map((d) =>
            d.kind === 'send' ? `send ${d.email}` : `${d.kind} ${d.email} (${d.reason})`,
          ),
        });
        return handled;
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name ?? 'Error' });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
