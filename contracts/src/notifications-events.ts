import Type, { type Static, type TSchema } from 'typebox';
import { Timestamp, Uuid } from './common.ts';

/** Schema version of the address events. Bump only with a new topic version (see README). */
export const NOTIFICATIONS_SCHEMA_VERSION = 1 as const;

/**
 * The subject of an address event: a mailbox, as the suppression list keeps it (lower-cased:
 * mailbox providers treat the local part without case). Not the product grammar (`EmailAddress`
 * of accounts' events would refuse addresses an older grammar let in, and an invitation can go to
 * an address no user holds): any address notifications sent to, without control characters (a
 * quoted local part may hold a space, a domain may not).
 */
export const NormalizedAddress = Type.String({
  minLength: 3,
  maxLength: 254,
  pattern: '^[^\\x00-\\x1f\\x7fA-Z]+@[^\\x00-\\x20\\x7fA-Z]+$',
  description: 'The address, lower-cased (the Kafka key); compare it lower-cased',
});

/**
 * Address events carry no user id on purpose: they state a fact about a mailbox, which is what the
 * suppression list holds. An address is held by at most one user at a time in accounts, but the
 * email that bounced may have gone to a user who removed the address since, or to an invitee who
 * has no user yet; each consumer maps the address to whoever holds it now. It also keeps the
 * topic free of a link between a user id and a mailbox's replies.
 */
const envelope = <K extends string, D extends TSchema>(type: K, data: D, description: string) =>
  Type.Object(
    {
      id: Type.String({ ...Uuid, description: 'Unique event id; consumers deduplicate on it' }),
      type: Type.Literal(type),
      address: NormalizedAddress,
      position: Type.Integer({
        minimum: 1,
        description:
          'Grows with each address event notifications writes (one sequence for every address, so gaps are normal): of two events about one address the higher is the newer; a consumer keeps the newest and ignores an older or repeated one',
      }),
      time: { ...Timestamp, description: 'When the address was listed or lifted (RFC 3339, UTC)' },
      schemaVersion: Type.Literal(NOTIFICATIONS_SCHEMA_VERSION),
      data,
    },
    { $id: type, title: type, description },
  );

/** The reply that made the address undeliverable, as the receiving side gave it. */
export const UndeliverableReply = Type.Object(
  {
    code: Type.Union([Type.Integer({ minimum: 400, maximum: 599 }), Type.Null()], {
      description: 'The basic SMTP reply code (RFC 5321), e.g. 550; null when only a DSN status is known',
    }),
    enhancedStatus: Type.Optional(
      Type.String({
        pattern: '^[245]\\.[0-9]{1,3}\\.[0-9]{1,3}$',
        description: 'The RFC 3463 enhanced status code (e.g. 5.1.1), when the reply carried one',
      }),
    ),
    text: Type.String({
      maxLength: 512,
      description:
        'The reply text, cut to 512 characters (it may quote the address; render it as text, never as HTML)',
    }),
  },
  { description: 'The SMTP reply or DSN status that said the mailbox does not exist' },
);
export type UndeliverableReply = Static<typeof UndeliverableReply>;

export const EmailAddressUndeliverable = envelope(
  'EmailAddressUndeliverable',
  Type.Object({
    cause: Type.Union([Type.Literal('smtp-reply'), Type.Literal('dsn')], {
      description:
        'smtp-reply: the receiving server refused the recipient during the SMTP session; dsn: a delivery status notification (RFC 3464) came back later',
    }),
    reply: UndeliverableReply,
    deliveryId: Type.Union([Uuid, Type.Null()], {
      description: "The delivery that got the reply (notifications' GET /deliveries/{id}), when known",
    }),
  }),
  "A final reply said the address has no mailbox (RFC 3463 5.1.x, 5.2.1 …): notifications suppresses product emails to it (verification and set-password emails are still tried) until the address is deliverable again. Consumers show it on the address; they must not stop the user's own attempts to fix it.",
);
export type EmailAddressUndeliverable = Static<typeof EmailAddressUndeliverable>;

export const EmailAddressDeliverable = envelope(
  'EmailAddressDeliverable',
  Type.Object({
    cause: Type.Union([Type.Literal('admin-lifted'), Type.Literal('accepted')], {
      description:
        'admin-lifted: a site admin lifted the suppression (DELETE /suppressions/{address}); accepted: an email to the address (a verification or set-password email) was accepted',
    }),
    deliveryId: Type.Union([Uuid, Type.Null()], {
      description: 'accepted: the delivery that got through; null when an admin lifted it',
    }),
  }),
  'An address that was undeliverable is deliverable again: notifications sends product emails to it again. It ends the last EmailAddressUndeliverable of the address.',
);
export type EmailAddressDeliverable = Static<typeof EmailAddressDeliverable>;

/** Every event type of `notifications.address-events.v1`, by type. */
export const addressEventSchemas = { EmailAddressUndeliverable, EmailAddressDeliverable } as const;
export type AddressEventType = keyof typeof addressEventSchemas;
export const addressEventTypes = Object.keys(addressEventSchemas) as AddressEventType[];
export type AddressEvent = EmailAddressUndeliverable | EmailAddressDeliverable;
