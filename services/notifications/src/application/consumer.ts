import type { Bus, BusMessage, Consumer, DecodedMessage } from '@sitemail/bus';
import { MalformedMessageError } from '@sitemail/bus';
import { decodeEvent, type FleetEvent, topics } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { handleEvent } from './handle-event.ts';

export const CONSUMER_GROUP = 'notifications';

/** Turns a message into a fleet event; anything that does not validate goes to the dead-letter topic. */
export function decodeFleetMessage(message: BusMessage): FleetEvent {
  const result = decodeEvent(message.value);
  if (!result.ok) {
    const first = result.problems[0];
    throw new MalformedMessageError(
      `invalid event${first ? ` at ${first.path || '/'}: ${first.message}` : ''}`,
      result.problems,
    );
  }
  return result.event;
}

export interface NotificationsConsumerOptions {
  bus: Bus;
  db: Database;
  siteConfig: () => SiteConfig;
  /** Called after a batch queued new deliveries, so the worker need not wait for its next poll. */
  onQueued?: () => void;
  groupId?: string;
  clock?: () => Date;
  /** How long a delivery waits for a recipient not known yet (ms, default 24 h). */
  awaitRecipientMs?: number;
}

/**
 * Consumes the accounts and code-monitoring topics: each event is handled in its own transaction
 * (projection, decisions and deliveries together), in partition order. Offsets are committed by
 * the bus after the batch resolves; a crash in between redelivers events that are then found in
 * processed_events and create nothing.
 */
export function createNotificationsConsumer(o: NotificationsConsumerOptions): Consumer {
  const clock = o.clock ?? (() => new Date());
  return o.bus.consumer<FleetEvent>({
    groupId: o.groupId ?? CONSUMER_GROUP,
    topics: [topics.accountsEvents, topics.codeMonitoringEvents],
    fromBeginning: true,
    decode: decodeFleetMessage,
    deadLetterTopic: topics.notificationsDeadLetter,
    handleBatch: async (batch: DecodedMessage<FleetEvent>[]) => {
      let queued = 0;
      for (const { value } of batch) {
        const handled = await handleEvent(o.db, value, o.siteConfig(), clock(), {
          ...(o.awaitRecipientMs !== undefined ? { awaitRecipientMs: o.awaitRecipientMs } : {}),
        });
        queued += handled.queued + handled.released;
      }
      if (queued > 0) o.onQueued?.();
    },
  });
}
