import type { OutgoingMessage } from '@sitemail/bus';
import { type AccountsEvent, sources, toWireMessage } from '@sitemail/contracts';
import type { StoredEvent } from '@sitemail/event-store';

/** The contract envelope of a stored accounts event: its stream is its user. */
export function accountsEventEnvelope(event: StoredEvent): AccountsEvent {
  return {
    id: event.id,
    type: event.type,
    userId: event.streamId,
    position: event.position,
    time: event.time,
    schemaVersion: event.schemaVersion,
    data: event.data,
  } as AccountsEvent;
}

/**
 * The Kafka message the outbox relay publishes for a stored event (`toMessage` of the relay):
 * keyed by user id, JSON body, CloudEvents headers. The provider contract test verifies the
 * notifications pact against this very function, so the relay must use it and nothing else.
 */
export function accountsOutboxMessage(event: StoredEvent): OutgoingMessage {
  return toWireMessage(accountsEventEnvelope(event), sources.accounts);
}
