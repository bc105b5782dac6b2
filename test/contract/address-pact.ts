/**
 * What both sides of the accounts ← notifications message pact share (the contracts run both
 * ways, issue 11 item 6): accounts is the consumer of notifications.address-events.v1, and
 * notifications the provider. The consumer test writes contracts/pacts/accounts-notifications.json;
 * the provider test verifies notifications against the committed file.
 */
import { fileURLToPath } from 'node:url';
import type { AddressEventType } from '@sitemail/contracts';

export const CONSUMER = 'accounts';
export const PROVIDER = 'notifications';
export const PACT_DIR = fileURLToPath(new URL('../../contracts/pacts/', import.meta.url));
export const PACT_FILE = `${PACT_DIR}${CONSUMER}-${PROVIDER}.json`;
/** The Kafka message key travels in the pact as this metadata entry, beside the CloudEvents headers. */
export const KEY_METADATA = 'kafka_key';

/** The states notifications is put in, each through its own code (store and worker statements). */
export const states = {
  refusedAtRcpt: 'a product email to an address was refused 550 5.1.1 during the SMTP session',
  bouncedLater: 'a delivery status notification said an email accepted earlier found no such mailbox',
  liftedByAdmin: 'a site admin lifted the suppression of an undeliverable address',
  acceptedAgain: 'a verification email to an undeliverable address was accepted',
} as const;
export type ProviderState = (typeof states)[keyof typeof states];

export interface AddressPactMessage {
  description: string;
  state: ProviderState;
  type: AddressEventType;
  /** The cause the provider's message must carry (which outbox row of the state it is). */
  cause: string;
}

export const messages = {
  undeliverableSmtp: {
    description: 'EmailAddressUndeliverable for a 550 5.1.1 at RCPT',
    state: states.refusedAtRcpt,
    type: 'EmailAddressUndeliverable',
    cause: 'smtp-reply',
  },
  undeliverableDsn: {
    description: 'EmailAddressUndeliverable for a bounce reported by a DSN',
    state: states.bouncedLater,
    type: 'EmailAddressUndeliverable',
    cause: 'dsn',
  },
  liftedByAdmin: {
    description: 'EmailAddressDeliverable lifted by a site admin',
    state: states.liftedByAdmin,
    type: 'EmailAddressDeliverable',
    cause: 'admin-lifted',
  },
  acceptedAgain: {
    description: 'EmailAddressDeliverable after an accepted email',
    state: states.acceptedAgain,
    type: 'EmailAddressDeliverable',
    cause: 'accepted',
  },
} as const satisfies Record<string, AddressPactMessage>;
