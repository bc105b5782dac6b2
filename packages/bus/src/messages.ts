import type { BusMessage, OutgoingMessage } from './types.ts';
import { MalformedMessageError } from './types.ts';

/** Kafka's own rule for topic names; the in-process bus also uses them as file names, so it matters there too. */
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

export function assertTopicName(topic: unknown, field = 'topic'): asserts topic is string {
  if (typeof topic !== 'string' || !TOPIC_NAME.test(topic) || topic === '.' || topic === '..') {
    throw new TypeError(
      `${field}: invalid topic name ${JSON.stringify(topic)} (letters, digits, . _ -; 1..249)`,
    );
  }
}

/**
 * Checks a whole publish call before anything is sent, so bad input fails with the field named
 * and nothing half-written. Values are never echoed: they may carry sealed tokens.
 */
export function assertOutgoing(topic: unknown, messages: unknown): asserts messages is OutgoingMessage[] {
  assertTopicName(topic);
  if (!Array.isArray(messages)) throw new TypeError('messages: expected an array');
  messages.forEach((m: unknown, i) => {
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw new TypeError(`${at}: expected an object`);
    const { key, value, headers } = m as Record<string, unknown>;
    if (typeof key !== 'string') throw new TypeError(`${at}.key: expected a string`);
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
      throw new TypeError(`${at}.value: expected a string or a Buffer`);
    }
    if (headers === undefined) return;
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
      throw new TypeError(`${at}.headers: expected an object of strings`);
    }
    for (const [name, v] of Object.entries(headers)) {
      if (typeof v !== 'string') throw new TypeError(`${at}.headers.${name}: expected a string`);
    }
  });
}

/** kafkajs header values may be Buffers or arrays of them; consumers see plain strings (repeats joined by ","). */
export function headersToStrings(
  headers: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue;
    out[name] = (Array.isArray(value) ? value : [value]).map((v) => v.toString()).join(',');
  }
  return out;
}

export const DEAD_LETTER_HEADERS = {
  reason: 'x-dead-letter-reason',
  problems: 'x-dead-letter-problems',
  topic: 'x-original-topic',
  partition: 'x-original-partition',
  offset: 'x-original-offset',
} as const;

/** The original headers plus why and where from; the key and value travel unchanged. */
export function deadLetterHeaders(message: BusMessage, error: MalformedMessageError): Record<string, string> {
  const headers: Record<string, string> = {
    ...message.headers,
    [DEAD_LETTER_HEADERS.reason]: error.message,
    [DEAD_LETTER_HEADERS.topic]: message.topic,
    [DEAD_LETTER_HEADERS.partition]: String(message.partition),
    [DEAD_LETTER_HEADERS.offset]: message.offset,
  };
  if (error.problems.length > 0) headers[DEAD_LETTER_HEADERS.problems] = JSON.stringify(error.problems);
  return headers;
}

export { MalformedMessageError };
