import type { Migration } from '@sitemail/db';

/**
 * One-click unsubscribes (issue 11 item 7, RFC 8058): the email kinds a user opted out of. Only
 * the user id and the kind, no address: the token names the user, and the policy suppresses the
 * kind for whatever address the user has. `UserDeleted` removes the user's rows (store/erasure.ts).
 */
export const unsubscribesMigration: Migration = {
  id: '010-unsubscribes',
  sql: `
CREATE TABLE unsubscribes (
  user_id uuid NOT NULL,
  email_kind text NOT NULL,
  unsubscribed_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, email_kind)
);
`,
};
