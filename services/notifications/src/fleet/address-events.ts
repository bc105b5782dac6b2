import type { OutgoingMessage } from '@sitemail/bus';
import {
  type AddressEvent,
  NOTIFICATIONS_SCHEMA_VERSION,
  sources,
  toWireMessage,
  validateEvent,
} from '@sitemail/contracts';
import { classifyReply } from '../smtp/classify.ts';

/** A row of `address_events_outbox` (migration 011) as the relay reads it. */
export interface AddressEventRow {
  seq: string;
  event_id: string;
  address: string;
  type: 'EmailAddressUndeliverable' | 'EmailAddressDeliverable';
  cause: string;
  delivery_id: string | null;
  reply: string | null;
  response_code: number | null;
  occurred_at: Date | string;
}

/** The longest reply text an event carries (the contract's bound): replies can be long, and quote. */
export const REPLY_TEXT_MAX = 512;

/** Control characters other than tab become spaces: a reply is shown as one line of text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const oneLine = (text: string) => text.replace(/[\u0000-\u0008\u000a-\u001f\u007f]+/g, ' ').trim();

/**
 * The contract event for an outbox row: pure, and the one function both the relay and the
 * provider pact test use. The enhanced status comes from the reply text by the same rule the
 * worker classified it with (smtp/classify.ts), the basic code from the row; `position` is the
 * row's sequence, which grows with every address event (see migration 011).
 */
export function toAddressEvent(row: AddressEventRow): AddressEvent {
  const meta = {
    id: row.event_id,
    address: row.address,
    position: Number(row.seq),
    time: new Date(row.occurred_at).toISOString(),
    schemaVersion: NOTIFICATIONS_SCHEMA_VERSION,
  };
  switch (row.type) {
    case 'EmailAddressUndeliverable': {
      const text = oneLine(row.reply ?? '').slice(0, REPLY_TEXT_MAX);
      const code = row.response_code;
      const enhanced = classifyReply({ code: code ?? undefined, reply: text }).enhanced;
      return {
        ...meta,
        type: 'EmailAddressUndeliverable',
        data: {
          cause: row.cause === 'dsn' ? 'dsn' : 'smtp-reply',
          reply: {
            code: code !== null && code >= 400 && code <= 599 ? code : null,
            ...(enhanced ? { enhancedStatus: enhanced } : {}),
            text,
          },
          deliveryId: row.delivery_id,
        },
      };
    }
    case 'EmailAddressDeliverable':
      return {
        ...meta,
        type: 'EmailAddressDeliverable',
        data: {
          cause: row.cause === 'admin-lifted' ? 'admin-lifted' : 'accepted',
          deliveryId: row.cause === 'admin-lifted' ? null : row.delivery_id,
        },
      };
    default: {
      const never: never = row.type;
      throw new Error(`unknown address event type ${String(never)}`);
    }
  }
}

/**
 * The Kafka message for an outbox row, or the problems that stop it from being one (an address
 * the contract cannot carry: the relay sets such a row aside rather than stalling the topic).
 */
export function toAddressEventMessage(
  row: AddressEventRow,
): { ok: true; message: OutgoingMessage; event: AddressEvent } | { ok: false; problems: string[] } {
  const event = toAddressEvent(row);
  const problems = validateEvent(event);
  if (problems.length > 0) return { ok: false, problems: problems.map((p) => `${p.path} ${p.message}`) };
  return { ok: true, message: toWireMessage(event, sources.notifications), event };
}
