/**
 * The one call a fleet consumer needs: `decode(topic or type, message value)` returns the typed
 * event or throws an `EventDecodeError` whose message names the field that is wrong. It is
 * `decodeEvent` (JSON parse + the TypeBox schema of the body's type) plus the check that the type
 * belongs where the caller read it: on that topic (its owner's types, `topicAuthority`) or of that
 * exact type. Throwing suits a kafkajs `eachMessage`; `decodeEvent` stays for callers that want
 * the problems as a value.
 */
import type { AccountsEvent } from './accounts-events.ts';
import type { CodeMonitorTriggered } from './code-monitoring-events.ts';
import type { AddressEvent } from './notifications-events.ts';
import { topicAuthority, topics } from './topics.ts';
import {
  type ContractEvent,
  type DecodeProblem,
  decodeAddressEvent,
  decodeEvent,
  type EventType,
  eventSchemas,
  isAddressEventType,
  mayIgnoreUnknownType,
} from './wire.ts';

/** The events each event topic carries; the dead-letter topic carries raw messages, not events. */
export interface TopicEvents {
  [topics.accountsEvents]: AccountsEvent;
  [topics.codeMonitoringEvents]: CodeMonitorTriggered;
  [topics.notificationsAddressEvents]: AddressEvent;
}
export type EventTopic = keyof TopicEvents;
export type EventOf<T extends EventType> = Extract<ContractEvent, { type: T }>;

/** A message that is not a valid event where it was read. `problems` lists all (at most 10). */
export class EventDecodeError extends Error {
  override readonly name = 'EventDecodeError';
  /** JSON pointer of the first wrong field (`/data/email`); empty when the whole message is wrong. */
  readonly field: string;
  constructor(
    /** The topic or event type the caller decoded as. */
    readonly expected: string,
    readonly problems: DecodeProblem[],
    /** The body's type when it is a well-formed event of a type these contracts do not know. */
    readonly unknownType?: string,
  ) {
    const first = problems[0] ?? { path: '', message: 'invalid' };
    const field = fieldOf(first);
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    super(`not a valid ${expected} event: ${field ? `field ${field}` : 'message'} ${first.message}${more}`);
    this.field = field;
  }

  /**
   * The fleet's rule for types added after this version (`mayIgnoreUnknownType`): true when the
   * message read from topic `expected` is a well-formed event of an unknown type from the topic's
   * owner, so the consumer acknowledges and skips it instead of dead-lettering it. Takes the
   * headers as kafkajs gives them (Buffers).
   */
  mayIgnore(headers: Record<string, unknown> | undefined): boolean {
    if (this.unknownType === undefined) return false;
    const asText = Object.fromEntries(
      Object.entries(headers ?? {}).map(([k, v]) => [
        k,
        typeof v === 'string' || v instanceof Uint8Array ? (text(v) ?? undefined) : undefined,
      ]),
    );
    const result = { ok: false as const, problems: this.problems, unknownType: this.unknownType };
    return mayIgnoreUnknownType(this.expected, asText, result);
  }
}

/** TypeBox reports a missing property at its parent (`/data`, "must have required properties x"). */
function fieldOf(problem: DecodeProblem): string {
  const missing = /^must have required propert(?:y|ies) ([^,\s]+)/.exec(problem.message);
  return missing ? `${problem.path}/${missing[1]}` : problem.path;
}

const isEventType = (name: string): name is EventType => Object.hasOwn(eventSchemas, name);

function text(value: string | Uint8Array | null | undefined): string | null | undefined {
  if (value === null || value === undefined || typeof value === 'string') return value;
  return new TextDecoder('utf-8').decode(value);
}

/**
 * Decodes a message value (a kafkajs `message.value`, a Buffer, bytes or a string) read from
 * `topic`, or expected to be an event of `type`. Unknown fields are tolerated; an unknown type, a
 * type the topic's producer may not send, or an invalid body throws `EventDecodeError`.
 */
export function decode<K extends EventTopic>(
  topic: K,
  value: string | Uint8Array | null | undefined,
): TopicEvents[K];
export function decode<T extends EventType>(
  type: T,
  value: string | Uint8Array | null | undefined,
): EventOf<T>;
export function decode(topicOrType: string, value: string | Uint8Array | null | undefined): ContractEvent;
export function decode(topicOrType: string, value: string | Uint8Array | null | undefined): ContractEvent {
  const allowed = isEventType(topicOrType) ? [topicOrType] : topicAuthority[topicOrType]?.types;
  if (allowed === undefined) {
    throw new TypeError(
      `decode: ${JSON.stringify(topicOrType)} is neither an event topic ` +
        `(${Object.keys(topicAuthority).join(', ')}) nor an event type (${Object.keys(eventSchemas).join(', ')})`,
    );
  }
  // Each family has its own envelope (user id or address), so an unknown type is judged by the
  // envelope of the family the caller expects.
  const result = allowed.some(isAddressEventType)
    ? decodeAddressEvent(text(value))
    : decodeEvent(text(value));
  if (!result.ok) throw new EventDecodeError(topicOrType, result.problems, result.unknownType);
  if (!allowed.includes(result.event.type)) {
    const where = isEventType(topicOrType) ? `an event of type ${topicOrType}` : `on ${topicOrType}`;
    throw new EventDecodeError(topicOrType, [
      {
        path: '/type',
        message: `is ${JSON.stringify(result.event.type)}, which is not expected ${where} (expected ${allowed.join(', ')})`,
      },
    ]);
  }
  return result.event;
}
