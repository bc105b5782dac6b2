import { accountsEventTypes } from './accounts-events.ts';
import { addressEventTypes } from './notifications-events.ts';

/** Topic names are part of the contract: a breaking change gets a new topic version. */
export const topics = {
  accountsEvents: 'accounts.user-events.v1',
  codeMonitoringEvents: 'code-monitoring.notifications.v1',
  notificationsDeadLetter: 'notifications.dead-letter.v1',
  /** What notifications learnt about mailboxes (undeliverable, deliverable again), keyed by the address. */
  notificationsAddressEvents: 'notifications.address-events.v1',
  /** Messages accounts' consumer could not accept (as notifications' dead-letter topic). */
  accountsDeadLetter: 'accounts.dead-letter.v1',
} as const;
export type TopicName = (typeof topics)[keyof typeof topics];

/** CloudEvents `source` of each producer. */
export const sources = {
  accounts: '/services/accounts',
  codeMonitoring: '/services/code-monitoring',
  notifications: '/services/notifications',
} as const;

/**
 * Which producer owns each topic its consumers read: the event types it may carry and the
 * CloudEvents `source` its messages bear. A consumer dead-letters anything else, so a service
 * that may write one topic cannot speak for another's aggregates (code monitoring cannot create
 * users or API keys). Defence in depth beside the broker's write ACLs, which are what actually
 * stop a client from writing a topic.
 */
export const topicAuthority: Readonly<
  Record<string, { readonly source: string; readonly types: readonly string[] }>
> = {
  [topics.accountsEvents]: { source: sources.accounts, types: accountsEventTypes },
  [topics.codeMonitoringEvents]: { source: sources.codeMonitoring, types: ['CodeMonitorTriggered'] },
  [topics.notificationsAddressEvents]: { source: sources.notifications, types: addressEventTypes },
};
