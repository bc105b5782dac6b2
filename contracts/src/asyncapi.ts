/**
 * The AsyncAPI 3.0.0 document of the fleet's events, built from the same TypeBox source as the
 * code (`eventSchemas`, `topics`, `sources`, `examples`, `toWireMessage`). `npm run generate -w
 * contracts` writes it to `generated/asyncapi.json`; a test fails when that file is stale.
 */
import { accountsEventTypes } from './accounts-events.ts';
import { examples } from './examples.ts';
import { type JsonSchema, toPlainJson } from './json-schema.ts';
import { addressEventTypes } from './notifications-events.ts';
import { topics } from './topics.ts';
import {
  CONTENT_TYPE,
  type EventType,
  eventSchemas,
  isAddressEventType,
  sourceOfType,
  toWireMessage,
} from './wire.ts';

/** Version of the contract as a whole; the released schemas of it live in `released/v<major>`. */
export const CONTRACT_VERSION = '1.0.0';

const KAFKA_BINDING_VERSION = '0.5.0';

/** Which producer's `source` each event carries. */
const sourceOf = (type: EventType): string => sourceOfType(type);

/** Kafka message key: the user id, so each user's events stay in order on one partition. */
const userKey = {
  type: 'string',
  format: 'uuid',
  description: "The user (aggregate) id; one user's events share a partition, so their order holds",
};

/** Kafka message key of an address event: the lower-cased address, so its events stay in order. */
const addressKey = {
  type: 'string',
  description: "The address, lower-cased; one address's events share a partition, so their order holds",
};

/** The CloudEvents-style headers `toWireMessage` writes (binary content mode over Kafka). */
function cloudEventsHeaders(type: EventType): JsonSchema {
  return {
    type: 'object',
    required: [
      'ce_specversion',
      'ce_id',
      'ce_type',
      'ce_source',
      'ce_time',
      'ce_subject',
      'ce_schemaversion',
      'content-type',
    ],
    properties: {
      ce_specversion: { type: 'string', const: '1.0', description: 'CloudEvents spec version' },
      ce_id: {
        type: 'string',
        format: 'uuid',
        description: 'Equals the body `id`; consumers deduplicate on it',
      },
      ce_type: { type: 'string', const: type, description: 'Equals the body `type`' },
      ce_source: { type: 'string', const: sourceOf(type), description: 'The producing service' },
      ce_time: { type: 'string', format: 'date-time', description: 'Equals the body `time`' },
      ce_subject: isAddressEventType(type)
        ? { type: 'string', description: 'The address, lower-cased (also the message key)' }
        : { type: 'string', format: 'uuid', description: 'The user id (also the message key)' },
      ce_schemaversion: {
        type: 'string',
        pattern: '^[0-9]+$',
        description: 'Equals the body `schemaVersion`',
      },
      'content-type': { type: 'string', const: CONTENT_TYPE },
      // Optional: the fleet convention is CloudEvents; trace context is an addition producers may omit.
      traceparent: {
        type: 'string',
        pattern: '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$',
        description:
          'Optional W3C Trace Context (https://www.w3.org/TR/trace-context/#traceparent-header) of what ' +
          'caused the event: accounts sends the trace of the HTTP request and command, and notifications ' +
          'continues it to the email it sends (header X-Sitemail-Trace-Id). A producer may omit it; a ' +
          'consumer must accept a message without it, or with one it cannot parse, and start a trace of its own',
      },
    },
  };
}

/** The parts of an AsyncAPI Message Object this document uses. */
export interface AsyncApiMessage {
  name: string;
  title: string;
  summary: string;
  contentType?: string;
  headers: object;
  payload: object;
  correlationId?: object;
  bindings?: object;
  examples?: { name: string; summary: string; headers: Record<string, string>; payload: object }[];
}

function message(type: EventType): AsyncApiMessage {
  const { $id: _id, title: _title, description, ...payload } = toPlainJson(eventSchemas[type]);
  const example = examples[type];
  const wire = toWireMessage(example, sourceOf(type));
  return {
    name: type,
    title: type,
    summary: String(description),
    contentType: CONTENT_TYPE,
    headers: cloudEventsHeaders(type),
    payload: { title: type, description, ...payload },
    correlationId: { description: 'The event id', location: '$message.payload#/id' },
    bindings: {
      kafka: { key: isAddressEventType(type) ? addressKey : userKey, bindingVersion: KAFKA_BINDING_VERSION },
    },
    examples: [
      {
        name: `${type}Example`,
        summary: `A valid ${type}`,
        headers: wire.headers,
        payload: toPlainJson(example),
      },
    ],
  };
}

const deadLetterMessage: AsyncApiMessage = {
  name: 'DeadLetter',
  title: 'Dead letter',
  summary:
    'A message a consumer could not accept (not JSON, unknown type, invalid body). Key and value travel unchanged; ' +
    'the original headers are kept and the reason added.',
  headers: {
    type: 'object',
    required: ['x-dead-letter-reason', 'x-original-topic', 'x-original-partition', 'x-original-offset'],
    properties: {
      'x-dead-letter-reason': { type: 'string', description: 'Why the consumer rejected it' },
      'x-dead-letter-problems': {
        type: 'string',
        description: 'JSON array of {path, message}, when validation failed',
      },
      'x-original-topic': { type: 'string' },
      'x-original-partition': { type: 'string', pattern: '^[0-9]+$' },
      'x-original-offset': { type: 'string', pattern: '^[0-9]+$' },
    },
  },
  payload: { description: 'The original message value, unchanged (may not be JSON)' },
};

const messageRefs = (channel: string, types: readonly string[]) =>
  types.map((t) => ({ $ref: `#/channels/${channel}/messages/${t}` }));

/** Builds the AsyncAPI 3.0.0 document. Pure: same source, same document. */
export function buildAsyncApiDocument() {
  const eventTypes = Object.keys(eventSchemas) as EventType[];
  const codeMonitoringTypes = eventTypes.filter(
    (t) => !(accountsEventTypes as string[]).includes(t) && !isAddressEventType(t),
  );
  const channelMessages = (types: readonly EventType[]) =>
    Object.fromEntries(types.map((t) => [t, { $ref: `#/components/messages/${t}` }]));
  const kafkaChannel = (topic: string) => ({ kafka: { topic, bindingVersion: KAFKA_BINDING_VERSION } });

  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Sitemail fleet events',
      version: CONTRACT_VERSION,
      description:
        'Events the accounts service publishes and the notifications service (and other fleet services) consume, and ' +
        'the address events notifications publishes and accounts consumes. JSON bodies; Kafka messages keyed by user ' +
        'id (per-user order), address events by address; CloudEvents-style headers. Consumers must ' +
        'deduplicate on the event id and tolerate unknown fields. Generated from contracts/src (TypeBox); do not edit.',
    },
    defaultContentType: CONTENT_TYPE,
    servers: {
      kafka: {
        host: 'kafka:9092',
        protocol: 'kafka',
        description: 'The Kafka of docker-compose.yml; set KAFKA_BROKERS for another cluster',
      },
    },
    channels: {
      accountsUserEvents: {
        address: topics.accountsEvents,
        title: 'Accounts user events',
        description:
          'Every event of every user stream of accounts, in per-user order (published through the outbox).',
        messages: channelMessages(accountsEventTypes),
        bindings: kafkaChannel(topics.accountsEvents),
      },
      codeMonitoringNotifications: {
        address: topics.codeMonitoringEvents,
        title: 'Code-monitoring notifications',
        description: 'Events of the code-monitoring service that should become email.',
        messages: channelMessages(codeMonitoringTypes),
        bindings: kafkaChannel(topics.codeMonitoringEvents),
      },
      notificationsAddressEvents: {
        address: topics.notificationsAddressEvents,
        title: 'Notifications address events',
        description:
          'What notifications learnt about mailboxes: an address undeliverable (a final reply said there is no such mailbox) ' +
          'and deliverable again. Keyed by the lower-cased address; written in the transaction that lists or lifts the ' +
          'address and published through its outbox, in order per address. Only notifications produces it.',
        messages: channelMessages(addressEventTypes),
        bindings: kafkaChannel(topics.notificationsAddressEvents),
      },
      notificationsDeadLetter: {
        address: topics.notificationsDeadLetter,
        title: 'Notifications dead letters',
        description: 'Messages notifications could not accept; it keeps consuming after writing one here.',
        messages: { DeadLetter: { $ref: '#/components/messages/DeadLetter' } },
        bindings: kafkaChannel(topics.notificationsDeadLetter),
      },
      accountsDeadLetter: {
        address: topics.accountsDeadLetter,
        title: 'Accounts dead letters',
        description:
          'Messages the address-events consumer of accounts could not accept; it keeps consuming after writing one here.',
        messages: { DeadLetter: { $ref: '#/components/messages/DeadLetter' } },
        bindings: kafkaChannel(topics.accountsDeadLetter),
      },
    },
    operations: {
      publishAccountsEvents: {
        action: 'send',
        title: 'accounts publishes its events',
        summary: 'The outbox relay of accounts publishes each committed event once committed, at least once.',
        channel: { $ref: '#/channels/accountsUserEvents' },
        messages: messageRefs('accountsUserEvents', accountsEventTypes),
        tags: [{ name: 'accounts' }],
      },
      receiveAccountsEvents: {
        action: 'receive',
        title: 'notifications consumes accounts events',
        summary: 'Keeps the recipient projection and decides which emails each event causes (idempotently).',
        channel: { $ref: '#/channels/accountsUserEvents' },
        messages: messageRefs('accountsUserEvents', accountsEventTypes),
        tags: [{ name: 'notifications' }],
      },
      publishCodeMonitoringEvents: {
        action: 'send',
        title: 'code-monitoring publishes notifications',
        channel: { $ref: '#/channels/codeMonitoringNotifications' },
        messages: messageRefs('codeMonitoringNotifications', codeMonitoringTypes),
        tags: [{ name: 'code-monitoring' }],
      },
      receiveCodeMonitoringEvents: {
        action: 'receive',
        title: 'notifications consumes code-monitoring events',
        channel: { $ref: '#/channels/codeMonitoringNotifications' },
        messages: messageRefs('codeMonitoringNotifications', codeMonitoringTypes),
        tags: [{ name: 'notifications' }],
      },
      publishAddressEvents: {
        action: 'send',
        title: 'notifications publishes what it learnt about addresses',
        summary:
          'The outbox relay of notifications publishes each listing and lifting of the suppression list once committed, at least once.',
        channel: { $ref: '#/channels/notificationsAddressEvents' },
        messages: messageRefs('notificationsAddressEvents', addressEventTypes),
        tags: [{ name: 'notifications' }],
      },
      receiveAddressEvents: {
        action: 'receive',
        title: 'accounts consumes address events',
        summary:
          "Records each address's deliverability (newest position wins) and shows it on the user's addresses.",
        channel: { $ref: '#/channels/notificationsAddressEvents' },
        messages: messageRefs('notificationsAddressEvents', addressEventTypes),
        tags: [{ name: 'accounts' }],
      },
      publishDeadLetters: {
        action: 'send',
        title: 'notifications sets malformed messages aside',
        channel: { $ref: '#/channels/notificationsDeadLetter' },
        messages: [{ $ref: '#/channels/notificationsDeadLetter/messages/DeadLetter' }],
        tags: [{ name: 'notifications' }],
      },
      publishAccountsDeadLetters: {
        action: 'send',
        title: 'accounts sets malformed address events aside',
        channel: { $ref: '#/channels/accountsDeadLetter' },
        messages: [{ $ref: '#/channels/accountsDeadLetter/messages/DeadLetter' }],
        tags: [{ name: 'accounts' }],
      },
    },
    components: {
      messages: {
        ...Object.fromEntries(eventTypes.map((t) => [t, message(t)])),
        DeadLetter: deadLetterMessage,
      } as Record<string, AsyncApiMessage>,
    },
  };
}

export type AsyncApiDocument = ReturnType<typeof buildAsyncApiDocument>;
