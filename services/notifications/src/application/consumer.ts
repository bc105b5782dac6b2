import type {
  Bus,
  BusMessage,
  Consumer,
  ConsumerOptions,
  ConsumerState,
  DecodedMessage,
} from '@sitemail/bus';
import { MalformedMessageError } from '@sitemail/bus';
import {
  type DecodeResult,
  decodeEvent,
  type FleetEvent,
  mayIgnoreUnknownType,
  topicAuthority,
  topics,
} from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { inEventSpan } from './event-span.ts';
import { type HandledEvent, handleEvents } from './handle-event.ts';

export const CONSUMER_GROUP = 'notifications';

/**
 * Partitions whose batches are handled at the same time. A batch mostly waits on Postgres, so
 * several in flight use the round trips' idle time; each holds one pooled connection for its
 * transaction (10 by default), which leaves room for the worker and the HTTP routes.
 */
export const DEFAULT_PARTITIONS_CONCURRENTLY = 4;

/**
 * Why a valid event may not be taken from this topic, or undefined when it may: each topic carries
 * only the event types its producer owns, with that producer's CloudEvents `source` (the
 * `topicAuthority` table of the contracts), and the `ce_type` header must agree with the body.
 * Otherwise a service allowed to write one topic could create users or site-admin API keys.
 */
export function authorityProblem(message: BusMessage, event: FleetEvent): string | undefined {
  const source = message.headers.ce_source;
  const refused = `${event.type} (source ${source ?? 'none'}) is refused on topic ${message.topic}`;
  const owner = topicAuthority[message.topic];
  if (!owner) return `${refused}: notifications consumes no such topic`;
  if (!owner.types.includes(event.type)) {
    const carried =
      owner.types.length <= 3
        ? owner.types.join(', ')
        : `the ${owner.types.length} event types of ${owner.source}`;
    return `${refused}: it carries ${carried} only`;
  }
  if (source !== owner.source) return `${refused}: it carries events from ${owner.source} only`;
  const headerType = message.headers.ce_type;
  if (headerType !== undefined && headerType !== event.type) {
    return `${refused}: its ce_type header says ${JSON.stringify(headerType)}`;
  }
  return undefined;
}

/**
 * Turns a message into a fleet event; anything that does not validate, or that its topic's
 * producer does not own, goes to the dead-letter topic with the reason.
 */
export function decodeFleetMessage(message: BusMessage): FleetEvent {
  return checkDecoded(message, decodeEvent(message.value));
}

/**
 * What the consumer decodes with: as `decodeFleetMessage`, except that a well-formed event of a
 * type its topic's owner added after this build is skipped (undefined), not dead-lettered: adding
 * an event type is a compatible change of the contract (contracts/README.md, "Evolving the contract").
 */
export function decodeOrSkipFleetMessage(message: BusMessage): FleetEvent | undefined {
  const result = decodeEvent(message.value);
  if (mayIgnoreUnknownType(message.topic, message.headers, result)) return undefined;
  return checkDecoded(message, result);
}

function checkDecoded(message: BusMessage, result: DecodeResult): FleetEvent {
  if (!result.ok) {
    const first = result.problems[0];
    throw new MalformedMessageError(
      `invalid event${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`,
      result.problems,
    );
  }
  const refused = authorityProblem(message, result.event);
  if (refused) throw new MalformedMessageError(refused);
  return result.event;
}

export interface NotificationsConsumerOptions {
  bus: Bus;
  db: Database;
  siteConfig: () => SiteConfig;
  /** Called after a batch queued new deliveries, so the worker need not wait for its next poll. */
  onQueued?: () => void;
  /** Told when the consumer starts joining, is assigned, retries or stops (the app logs it). */
  onStateChange?: (state: ConsumerState) => void;
  /** Told after each event was handled (committed), e.g. for metrics. */
  onHandled?: (eventType: string, handled: HandledEvent) => void;
  /** The bus's per-partition lag and dead-letter listeners (metrics.ts). */
  onLag?: ConsumerOptions<unknown>['onLag'];
  onDeadLettered?: ConsumerOptions<unknown>['onDeadLettered'];
  groupId?: string;
  clock?: () => Date;
  /** How long a delivery waits for a recipient not known yet (ms, default 24 h). */
  awaitRecipientMs?: number;
  /** Default DEFAULT_PARTITIONS_CONCURRENTLY; batches of one partition stay in order. */
  partitionsConsumedConcurrently?: number;
}

/**
 * Consumes the accounts and code-monitoring topics: each batch of a partition is handled in one
 * transaction (projection, decisions and deliveries together, see `handleEvents`), in partition
 * order, several partitions at a time. Offsets are committed by the bus after the batch resolves;
 * a crash in between redelivers events that are then found in processed_events and create nothing.
 */
export function createNotificationsConsumer(o: NotificationsConsumerOptions): Consumer {
  const clock = o.clock ?? (() => new Date());
  return o.bus.consumer<FleetEvent | undefined>({
    groupId: o.groupId ?? CONSUMER_GROUP,
    topics: [topics.accountsEvents, topics.codeMonitoringEvents],
    fromBeginning: true,
    decode: decodeOrSkipFleetMessage,
    deadLetterTopic: topics.notificationsDeadLetter,
    ...(o.onStateChange ? { onStateChange: o.onStateChange } : {}),
    ...(o.onLag ? { onLag: o.onLag } : {}),
    ...(o.onDeadLettered ? { onDeadLettered: o.onDeadLettered } : {}),
    partitionsConsumedConcurrently: o.partitionsConsumedConcurrently ?? DEFAULT_PARTITIONS_CONCURRENTLY,
    handleBatch: async (batch: DecodedMessage<FleetEvent | undefined>[]) => {
      // A type added after this build is skipped (decodeOrSkipFleetMessage).
      const known = batch.filter((m): m is DecodedMessage<FleetEvent> => m.value !== undefined);
      const handled = await handleEvents(
        o.db,
        known.map((m) => m.value),
        o.siteConfig(),
        clock(),
        {
          ...(o.awaitRecipientMs !== undefined ? { awaitRecipientMs: o.awaitRecipientMs } : {}),
          around: (event, i, handle) => inEventSpan(known[i]!.message, event, handle),
        },
      );
      let queued = 0;
      for (const [i, h] of handled.entries()) {
        o.onHandled?.(known[i]!.value.type, h);
        queued += h.queued + h.released;
      }
      if (queued > 0) o.onQueued?.();
    },
  });
}
