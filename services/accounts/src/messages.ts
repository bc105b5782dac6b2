import {
  ACCOUNTS_SCHEMA_VERSION,
  type AccountsEvent,
  toWireMessage,
  type WireMessage,
} from '@sitemail/contracts';
import type { StoredEvent } from '@sitemail/event-store';

/** The contract envelope of a stored event: the user id is the stream id. */
export function toAccountsEvent(stored: StoredEvent): AccountsEvent {
  return {
    id: stored.id,
    type: stored.type,
    userId: stored.streamId,
    position: stored.position,
    time: stored.time,
    schemaVersion: ACCOUNTS_SCHEMA_VERSION,
    data: stored.data,
  } as AccountsEvent;
}

/** What the outbox relay puts on the topic for a stored event (contract tests verify this very function). */
export const toAccountsMessage = (stored: StoredEvent): WireMessage => toWireMessage(toAccountsEvent(stored));
