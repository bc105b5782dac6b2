import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { type AccountsEvent, accountsEventSchemas } from './accounts-events.ts';
import { CodeMonitorTriggered } from './code-monitoring-events.ts';
import { Timestamp, Uuid } from './common.ts';
import {
  type AddressEvent,
  type AddressEventType,
  addressEventSchemas,
  NormalizedAddress,
} from './notifications-events.ts';
import { sources, topicAuthority } from './topics.ts';

/** The events about a user (keyed by user id): accounts' and code monitoring's. */
export const userEventSchemas = { ...accountsEventSchemas, CodeMonitorTriggered } as const;
export type UserEventType = keyof typeof userEventSchemas;
/** An event about a user: what notifications consumes (`decodeEvent`). */
export type FleetEvent = AccountsEvent | CodeMonitorTriggered;

/** Every event the fleet exchanges on the topics in `topics.ts`, by type: about users and about addresses. */
export const eventSchemas = { ...userEventSchemas, ...addressEventSchemas } as const;
export type EventType = keyof typeof eventSchemas;
/** Any event of the contract, user-keyed (`FleetEvent`) or address-keyed (`AddressEvent`). */
export type ContractEvent = FleetEvent | AddressEvent;

const compileAll = <S extends Record<string, unknown>>(schemas: S) =>
  Object.fromEntries(
    Object.entries(schemas).map(([type, schema]) => [type, Compile(schema as TSchema)]),
  ) as Record<keyof S, ReturnType<typeof Compile>>;
const validators = compileAll(userEventSchemas);
const addressValidators = compileAll(addressEventSchemas);

/** Whether an event is about an address (keyed by it) rather than about a user. */
export const isAddressEvent = (event: ContractEvent): event is AddressEvent =>
  Object.hasOwn(addressEventSchemas, event.type);

/** The producer whose `source` an event of this type carries. */
export function sourceOfType(type: string): string {
  if (Object.hasOwn(addressEventSchemas, type)) return sources.notifications;
  return type === 'CodeMonitorTriggered' ? sources.codeMonitoring : sources.accounts;
}

/**
 * A Kafka message as the fleet writes it: keyed by its subject (the user id, or the address of an
 * address event), JSON body, CloudEvents headers.
 */
export interface WireMessage {
  key: string;
  value: string;
  headers: Record<string, string>;
}

export const CONTENT_TYPE = 'application/json';

/**
 * Builds the Kafka message for an event. Producers must use this; contract tests verify it. The
 * source defaults to accounts' for user events (code monitoring passes its own) and to
 * notifications' for address events.
 */
export function toWireMessage(event: ContractEvent, source?: string): WireMessage {
  const subject = isAddressEvent(event) ? event.address : event.userId;
  return {
    key: subject,
    value: JSON.stringify(event),
    headers: {
      ce_specversion: '1.0',
      ce_id: event.id,
      ce_type: event.type,
      ce_source: source ?? (isAddressEvent(event) ? sources.notifications : sources.accounts),
      ce_time: event.time,
      ce_subject: subject,
      ce_schemaversion: String(event.schemaVersion),
      'content-type': CONTENT_TYPE,
    },
  };
}

export interface DecodeProblem {
  path: string;
  message: string;
}

export type DecodeResult<E = FleetEvent> =
  | { ok: true; event: E }
  | {
      ok: false;
      problems: DecodeProblem[];
      /**
       * Set when the body is a well-formed fleet envelope of a type this version of the contracts
       * does not know (a producer added it later): see `mayIgnoreUnknownType`.
       */
      unknownType?: string;
    };

/**
 * What every event of a family has, whatever its type: what a reader can check of a type it does
 * not know. User events name their user, address events their address.
 */
const envelopeOf = (subject: Record<string, TSchema>) =>
  Compile(
    Type.Object({
      id: Uuid,
      type: Type.String({ minLength: 1, maxLength: 100 }),
      ...subject,
      position: Type.Integer({ minimum: 1 }),
      time: Timestamp,
      schemaVersion: Type.Integer({ minimum: 1 }),
      data: Type.Object({}),
    }),
  );
const envelopeValidator = envelopeOf({ userId: Uuid });
const addressEnvelopeValidator = envelopeOf({ address: NormalizedAddress });

function decodeWith<E>(
  value: string | Buffer | null | undefined,
  known: Record<string, ReturnType<typeof Compile>>,
  envelope: ReturnType<typeof Compile>,
): DecodeResult<E> {
  if (value === null || value === undefined)
    return { ok: false, problems: [{ path: '', message: 'empty message' }] };
  let body: unknown;
  try {
    body = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch (err) {
    return { ok: false, problems: [{ path: '', message: `not JSON: ${(err as Error).message}` }] };
  }
  const type = (body as { type?: unknown } | null)?.type;
  if (typeof type !== 'string' || !Object.hasOwn(known, type)) {
    const problems = [{ path: '/type', message: `unknown event type ${JSON.stringify(type)}` }];
    return typeof type === 'string' && envelope.Check(body)
      ? { ok: false, problems, unknownType: type }
      : { ok: false, problems };
  }
  const validator = known[type] as ReturnType<typeof Compile>;
  if (validator.Check(body)) return { ok: true, event: body as E };
  return {
    ok: false,
    problems: [...validator.Errors(body)]
      .slice(0, 10)
      .map((e) => ({ path: e.instancePath, message: e.message })),
  };
}

/**
 * Parses and validates a message body. Unknown fields are accepted (tolerant reader: producers may
 * add optional fields within a schema version); unknown types and invalid bodies are problems.
 * An unknown type in a valid envelope is reported as `unknownType`, so that a consumer can skip it
 * (`mayIgnoreUnknownType`) instead of dead-lettering it.
 */
export function decodeEvent(value: string | Buffer | null | undefined): DecodeResult {
  return decodeWith<FleetEvent>(value, validators, envelopeValidator);
}

/**
 * `decodeEvent` for the address events of `notifications.address-events.v1` (keyed by address,
 * no user id): a user event is an unknown type here, as an address event is to `decodeEvent`.
 */
export function decodeAddressEvent(value: string | Buffer | null | undefined): DecodeResult<AddressEvent> {
  return decodeWith<AddressEvent>(value, addressValidators, addressEnvelopeValidator);
}

export const isAddressEventType = (type: string): type is AddressEventType =>
  Object.hasOwn(addressEventSchemas, type);

/** Validates an event against its schema; returns the problems (empty when valid). */
export function validateEvent(event: unknown): DecodeProblem[] {
  const type = (event as { type?: unknown } | null)?.type;
  const body = JSON.stringify(event);
  const result =
    typeof type === 'string' && isAddressEventType(type) ? decodeAddressEvent(body) : decodeEvent(body);
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
  result: DecodeResult<unknown>,
): boolean {
  if (result.ok || result.unknownType === undefined) return false;
  const owner = topicAuthority[topic];
  return owner !== undefined && headers.ce_source === owner.source && headers.ce_type === result.unknownType;
}
