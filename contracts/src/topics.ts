/** Topic names are part of the contract: a breaking change gets a new topic version. */
export const topics = {
  accountsEvents: 'accounts.user-events.v1',
  codeMonitoringEvents: 'code-monitoring.notifications.v1',
  notificationsDeadLetter: 'notifications.dead-letter.v1',
} as const;
export type TopicName = (typeof topics)[keyof typeof topics];

/** CloudEvents `source` of each producer. */
export const sources = {
  accounts: '/services/accounts',
  codeMonitoring: '/services/code-monitoring',
} as const;
