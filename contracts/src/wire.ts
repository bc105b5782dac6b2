import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { type AccountsEvent, accountsEventSchemas } from './accounts-events.ts';
import { CodeMonitorTriggered } from './code-monitoring-events.ts';
import { Timestamp, Uuid } from './common.ts';
import { sources, topicAuthority } from './topics.ts';

/** Every event the fleet exchanges on the topics in `topics.ts`, by type. */
export const eventSchemas = { ...accountsEventSchemas, CodeMonitorTriggered } as const;
export type EventType = keyof typeof eventSchemas;
export type FleetEvent = AccountsEvent | CodeMonitorTriggered;

const validators = Object.fromEntries(
  Object.entries(eventSchemas).map(([type, schema]) => [type, Compile(schema as TSchema)]),
) as Record<EventType, ReturnType<typeof Compile>>;

/** A Kafka message as the fleet writes it: keyed by user id, JSON body, CloudEvents headers. */
export interface WireMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

export const CONTENT_TYPE = 'application/json';

/** Builds the Kafka message for an event. Producers must use this; contract tests verify it. */
export function toWireMessage(event: FleetEvent, source: string = sources.accounts): WireMessage {
  return {
    key: event.userId,
    value: JSON.stringify(event),
    headers: {
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_type: event.type,
      ce_source: source,
      ce_time: event.time,
      ce_subject: event.userId,
      ce_schemaversion: String(event.schemaVersion),
      'content-type': CONTENT_TYPE,
    },
  };
}

export interface DecodeProblem {
  path: string;
  message: string;
}

export type DecodeResult =
  | { ok: true; event: FleetEvent }
  | {
      ok: false;
      problems: DecodeProblem[];
      /**
       * Set when the body is a well-formed fleet envelope of a type this version of the contracts
       * does not know (a producer added it later): see `mayIgnoreUnknownType`.
       */
      unknownType?: string;
    };

/** What every fleet event has, whatever its type: what a reader can check of a type it does not know. */
const envelopeValidator = Compile(
  Type.Object({
    id: Uuid,
    type: Type.String({ minLength: 1, maxLength: 100 }),
    userId: Uuid,
    position: Type.Integer({ minimum: 1 }),
    time: Timestamp,
    schemaVersion: Type.Integer({ minimum: 1 }),
    data: Type.Object({}),
  }),
);

/**
 * Parses and validates a message body. Unknown fields are accepted (tolerant reader: producers may
 * add optional fields within a schema version); unknown types and invalid bodies are problems.
 * An unknown type in a valid envelope is reported as `unknownType`, so that a consumer can skip it
 * (`mayIgnoreUnknownType`) instead of dead-lettering it.
 */
export function decodeEvent(value: string | Buffer | null | undefined): DecodeResult {
  if (value === null || value === undefined)
    return { ok: false, problems: [{ path: '', message: 'empty message' }] };
  let body: unknown;
  try {
    body = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `not JSON: ${(err as Error).message}` }] };
  }
  const type = (body as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !(type in validators)) {
    const problems = [{ path: '/type', message: `unknown event type ${JSON.stringify(type)}` }];
    return typeof type === 'string' && envelopeValidator.Check(body)
      ? { ok: false, problems, unknownType: type }
      : { ok: false, problems };
  }
  const validator = validators[type as EventType];
  if (validator.Check(body)) return { ok: true, event: body as FleetEvent };
  return {
    ok: false,
    problems: [...validator.Errors(body)]
      .slice(0, 10)
      .map((e) => ({ path: e.instancePath, message: e.message })),
  };
}

/** Validates an event against its schema; returns the problems (empty when valid). */
export function validateEvent(event: unknown): DecodeProblem[] {
  const result = decodeEvent(JSON.stringify(event));
  return result.ok ? [] : result.problems;
}

/**
 * The fleet's rule for event types a consumer does not know (contracts/README.md, "Evolving the
 * contract"): a producer may add event types to its topic within a topic version, so a consumer
 * skips (acknowledges, does not handle, does not dead-letter) a well-formed event of an unknown
 * type when it comes from the topic's owner: its CloudEvents `source` is the owner's and its
 * `ce_type` header agrees with the body. Anything else unknown is still dead-lettered, so nobody
 * can smuggle messages onto a topic under a made-up type.
 */
export function mayIgnoreUnknownType(
  topic: string,
  headers: Record<string, string | undefined>,
  result: DecodeResult,
): boolean {
  if (result.ok || result.unknownType === undefined) return false;
  const owner = topicAuthority[topic];
  return owner !== undefined && headers.ce_source === owner.source && headers.ce_type === result.unknownType;
}
