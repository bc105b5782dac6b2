import {
  type Bus,
  type BusMessage,
  type Consumer,
  type ConsumerState,
  type DecodedMessage,
  MalformedMessageError,
} from '@sitemail/bus';
import { type AddressEvent, decode, EventDecodeError, sources, topics } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import { applyAddressEvent } from '../store/deliverability.ts';

/** accounts' consumer group: one per service, as notifications' `notifications`. */
export const ACCOUNTS_CONSUMER_GROUP = 'accounts';

/**
 * Turns a message of `notifications.address-events.v1` into its event, `undefined` for a newer
 * type from notifications that this version does not know (skipped, the fleet's rule), or throws
 * `MalformedMessageError` (dead-lettered on `accounts.dead-letter.v1`) for anything else: an
 * invalid body, a type the topic does not carry, or a message not from notifications (topic
 * authority: only notifications may say an address bounced) or whose `ce_type` disagrees.
 */
export function decodeAddressEventMessage(message: BusMessage): AddressEvent | undefined {
  let event: AddressEvent;
  try {
    event = decode(topics.notificationsAddressEvents, message.value);
  } catch (err) {
    if (!(err instanceof EventDecodeError)) throw err;
    if (err.mayIgnore(message.headers)) return undefined;
    throw new MalformedMessageError(err.message, err.problems);
  }
  const source = message.headers.ce_source;
  if (source !== sources.notifications) {
    throw new MalformedMessageError(
      `${event.type} (source ${source ?? 'none'}) is refused on ${message.topic}: it carries events from ${sources.notifications} only`,
    );
  }
  if (message.headers.ce_type !== undefined && message.headers.ce_type !== event.type) {
    throw new MalformedMessageError(
      `${event.type} is refused: its ce_type header says ${JSON.stringify(message.headers.ce_type)}`,
    );
  }
  return event;
}

/**
 * Records a batch of address events in one transaction (the read model `address_deliverability`;
 * the newest position per address wins, so a redelivered batch changes nothing). Returns how many
 * rows changed.
 */
export async function recordAddressEvents(
  db: Pick<Database, 'transaction'>,
  events: readonly (AddressEvent | undefined)[],
): Promise<number> {
  const known = events.filter((e): e is AddressEvent => e !== undefined);
  if (known.length === 0) return 0;
  return db.transaction(async (tx: Queryable) => {
    let changed = 0;
    for (const event of known) if (await applyAddressEvent(tx, event)) changed++;
    return changed;
  });
}

export interface AddressEventsConsumerOptions {
  bus: Bus;
  db: Database;
  onStateChange?: (state: ConsumerState) => void;
  onError?: (err: unknown) => void;
}

/**
 * The consumer of notifications' address events: group `accounts`, from the beginning of the topic
 * on a first start (an address listed before accounts consumed still reads undeliverable).
 */
export function createAddressEventsConsumer(o: AddressEventsConsumerOptions): Consumer {
  return o.bus.consumer<AddressEvent | undefined>({
    groupId: ACCOUNTS_CONSUMER_GROUP,
    topics: [topics.notificationsAddressEvents],
    fromBeginning: true,
    decode: decodeAddressEventMessage,
    deadLetterTopic: topics.accountsDeadLetter,
    handleBatch: async (batch: DecodedMessage<AddressEvent | undefined>[]) => {
      await recordAddressEvents(
        o.db,
        batch.map((m) => m.value),
      );
    },
    ...(o.onStateChange ? { onStateChange: o.onStateChange } : {}),
    ...(o.onError ? { onError: (err: unknown) => o.onError?.(err) } : {}),
  });
}
