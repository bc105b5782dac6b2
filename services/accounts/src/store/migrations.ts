import type { Migration } from '@sitemail/db';

/**
 * accounts' read models and side tables. They are projections of the user streams, written in
 * the same transaction as the events (see `projection.ts`), except `passwords`, which holds what
 * must never be in an event (scrypt hashes) and is written by the command in that same transaction.
 *
 * Addresses are stored lower-cased and belong to at most one user, verified or not.
 * `site_bootstrap` holds one row, claimed by the first user: two sign-ups racing on an empty site
 * cannot both become site admin (the second insert fails and that sign-up is decided again).
 */
export const accountsMigrations: Migration[] = [
  {
    id: '001-read-models',
    sql: `
CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL,
  display_name text,
  origin text NOT NULL,
  auth_provider text NOT NULL,
  external_id text,
  site_admin boolean NOT NULL,
  primary_email text NOT NULL,
  created_at timestamptz NOT NULL,
  version integer NOT NULL
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_external_account_key ON users (auth_provider, external_id) WHERE external_id IS NOT NULL;
CREATE TABLE user_emails (
  email text PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id),
  added_at timestamptz NOT NULL,
  verified_at timestamptz,
  verification_requested_at timestamptz
);
CREATE INDEX user_emails_user_id ON user_emails (user_id);
CREATE TABLE api_keys (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id),
  name text NOT NULL,
  secret_sha256 text NOT NULL UNIQUE,
  created_by uuid NOT NULL,
  created_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_by uuid
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
CREATE TABLE passwords (
  user_id uuid PRIMARY KEY REFERENCES users (id),
  hash text NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE TABLE link_tokens (
  token_sha256 text PRIMARY KEY,
  kind text NOT NULL,
  user_id uuid NOT NULL,
  email text NOT NULL,
  invitation_id uuid,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE TABLE invitations (
  id uuid PRIMARY KEY,
  inviter_id uuid NOT NULL REFERENCES users (id),
  email text NOT NULL,
  organization text,
  invitee_user_id uuid,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX invitations_email ON invitations (email);
CREATE TABLE site_bootstrap (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  first_user_id uuid NOT NULL
);
`,
  },
  {
    // A link dies without being used when the address it went through is removed, changes hands
    // or loses its verification (`revoked_at`; `used_at` stays "accepted" for invitations).
    // `password_attempts`: failed password checks per account, for the per-account throttle.
    id: '002-link-revocation-and-password-attempts',
    sql: `
ALTER TABLE link_tokens ADD COLUMN revoked_at timestamptz;
CREATE INDEX link_tokens_user_email ON link_tokens (user_id, email);
CREATE INDEX link_tokens_invitation ON link_tokens (invitation_id);
CREATE INDEX invitations_invitee ON invitations (invitee_user_id, email);
CREATE TABLE password_attempts (
  subject text PRIMARY KEY,
  failures integer NOT NULL,
  last_failure_at timestamptz NOT NULL,
  locked_until timestamptz
);
`,
  },
  {
    // Deletion for real (issue 13). `user_data_keys`: the per-user key of the personal fields of the
    // user's events (store/personal-data.ts), outside the event log; deleted with the user. A
    // deleted user keeps a tombstone row in `users` (id, origin, created_at, deleted_at) with every
    // personal column null, so the username and address are free again.
    id: '003-user-deletion',
    sql: `
CREATE TABLE user_data_keys (
  user_id text PRIMARY KEY,
  data_key text NOT NULL,
  created_at timestamptz NOT NULL
);
ALTER TABLE users ALTER COLUMN username DROP NOT NULL;
ALTER TABLE users ALTER COLUMN primary_email DROP NOT NULL;
ALTER TABLE users ADD COLUMN deleted_at timestamptz;
CREATE INDEX link_tokens_expires_at ON link_tokens (expires_at);
`,
  },
  {
    // What notifications told the fleet about each mailbox (notifications.address-events.v1, issue
    // 11 item 6): not a projection of accounts' own streams but of notifications' topic, keyed by
    // the address (lower-cased, as user_emails), whoever holds it. `position` is the newest event
    // applied: an older or repeated one changes nothing. A deliverable row keeps only its status,
    // time and position (the reply is dropped with the suppression it explained). A deleted user's
    // addresses lose their rows with the user (projection.ts `eraseUser`).
    id: '004-address-deliverability',
    sql: `
CREATE TABLE address_deliverability (
  email text PRIMARY KEY CHECK (email = lower(email)),
  status text NOT NULL CHECK (status IN ('undeliverable', 'deliverable')),
  since timestamptz NOT NULL,
  cause text NOT NULL,
  reply_code integer,
  enhanced_status text,
  reply_text text,
  delivery_id uuid,
  position bigint NOT NULL,
  event_id uuid NOT NULL,
  CHECK ((status = 'undeliverable') = (reply_text IS NOT NULL))
);
`,
  },
];
