import type { Migration } from '@sitemail/db';
import { bouncesMigration } from './migrations/009-bounces.ts';
import { unsubscribesMigration } from './migrations/010-unsubscribes.ts';
import { fleetOutboxMigration } from './migrations/011-fleet-outbox.ts';

/** The service's own tables. Applied on start under an advisory lock (see `migrate`). */
export const migrations: Migration[] = [
  {
    id: '001-recipients-deliveries',
    sql: `
CREATE TABLE recipients (
  user_id uuid PRIMARY KEY,
  position integer NOT NULL,
  state jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recipient_api_keys (
  secret_sha256 text PRIMARY KEY,
  key_id uuid NOT NULL,
  user_id uuid NOT NULL REFERENCES recipients (user_id) ON DELETE CASCADE,
  revoked boolean NOT NULL
);
CREATE INDEX recipient_api_keys_user ON recipient_api_keys (user_id);

CREATE TABLE processed_events (
  event_id uuid PRIMARY KEY,
  event_type text NOT NULL,
  user_id uuid NOT NULL,
  position integer NOT NULL,
  decisions jsonb NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
  id uuid PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  event_id uuid NOT NULL REFERENCES processed_events (event_id),
  event_type text NOT NULL,
  decision_index integer NOT NULL,
  email_kind text NOT NULL,
  user_id uuid,
  recipient_address text,
  status text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'suppressed')),
  suppression_reason text,
  message jsonb,
  message_id text NOT NULL UNIQUE,
  attempt_count integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz,
  claimed_by text,
  claimed_until timestamptz,
  last_error text,
  last_error_step text,
  smtp_response text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  sent_at timestamptz,
  UNIQUE (event_id, decision_index),
  CHECK ((status = 'suppressed') = (suppression_reason IS NOT NULL)),
  CHECK (status = 'suppressed' OR (message IS NOT NULL AND recipient_address IS NOT NULL))
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status IN ('queued', 'deferred');
CREATE INDEX deliveries_claimed ON deliveries (claimed_until) WHERE status = 'sending';
CREATE INDEX deliveries_user ON deliveries (user_id, seq);
CREATE INDEX deliveries_address ON deliveries (lower(recipient_address), seq);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_status ON deliveries (status, seq);

CREATE TABLE delivery_attempts (
  delivery_id uuid NOT NULL REFERENCES deliveries (id),
  attempt integer NOT NULL,
  worker text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('sent', 'deferred', 'failed', 'abandoned')),
  smtp_response text,
  response_code integer,
  error_step text,
  error text,
  PRIMARY KEY (delivery_id, attempt)
);
`,
  },
  {
    // Deliveries awaiting their recipient: the event is kept (link tokens sealed, as everywhere) to
    // be decided again when the recipient's stream reaches notifications. The unnamed checks of 001
    // are replaced by named ones that admit the new status.
    id: '002-awaiting-recipient',
    sql: `
ALTER TABLE deliveries ADD COLUMN pending_event jsonb, ADD COLUMN recipient_position integer;

-- The names Postgres gave the unnamed checks of 001 (the status column's, then the table's in order).
ALTER TABLE deliveries DROP CONSTRAINT deliveries_status_check, DROP CONSTRAINT deliveries_check,
  DROP CONSTRAINT deliveries_check1;

ALTER TABLE deliveries
  ADD CONSTRAINT deliveries_status_check CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'failed',
    'suppressed', 'awaiting-recipient')),
  ADD CONSTRAINT deliveries_reason_check
    CHECK ((status IN ('suppressed', 'awaiting-recipient')) = (suppression_reason IS NOT NULL)),
  ADD CONSTRAINT deliveries_message_check
    CHECK (status IN ('suppressed', 'awaiting-recipient') OR (message IS NOT NULL AND recipient_address IS NOT NULL)),
  ADD CONSTRAINT deliveries_pending_event_check
    CHECK ((status = 'awaiting-recipient') = (pending_event IS NOT NULL));

CREATE INDEX deliveries_awaiting_user ON deliveries (user_id) WHERE status = 'awaiting-recipient';
CREATE INDEX deliveries_awaiting_until ON deliveries (next_attempt_at) WHERE status = 'awaiting-recipient';
`,
  },
  {
    // A try the provider throttled is recorded (outcome 'throttled') but not counted against the
    // delivery's attempts: attempts used = attempt_count - throttled_count. Numbering every try
    // keeps the attempt rows' key unique.
    id: '003-throttled-attempts',
    sql: `
ALTER TABLE deliveries ADD COLUMN throttled_count integer NOT NULL DEFAULT 0;

-- The name Postgres gave the outcome column's unnamed check in 001.
ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
  CHECK (outcome IN ('sent', 'deferred', 'failed', 'abandoned', 'throttled'));
`,
  },
  {
    // The W3C trace context of the event's handling (itself continuing the producer's
    // `traceparent` header): the worker continues it for the send, so one trace runs from the
    // request in accounts to the SMTP reply. Null for rows from before tracing.
    id: '004-deliveries-traceparent',
    sql: 'ALTER TABLE deliveries ADD COLUMN traceparent text',
  },
  {
    // Retry by time (give_up_at: the maximum age, or the link's expiry when sooner), why a delivery
    // failed (failure_reason: rejected | link-expired | max-age | max-attempts | render) and whose
    // problem the last reply was (reply_scope: address | message | sender | transient, from
    // smtp/classify.ts; 'address' is what a suppression list reads). A try made while the relay
    // refused the sender is recorded 'paused' and, like a throttled one, not counted
    // (throttled_count counts every uncounted try).
    id: '005-retry-by-time',
    sql: `
ALTER TABLE deliveries ADD COLUMN give_up_at timestamptz, ADD COLUMN failure_reason text,
  ADD COLUMN reply_scope text;
ALTER TABLE delivery_attempts ADD COLUMN reply_scope text;

ALTER TABLE delivery_attempts DROP CONSTRAINT delivery_attempts_outcome_check;
ALTER TABLE delivery_attempts ADD CONSTRAINT delivery_attempts_outcome_check
  CHECK (outcome IN ('sent', 'deferred', 'failed', 'abandoned', 'throttled', 'paused'));
`,
  },
  {
    // Erasure (UserDeleted, issue 13): a deleted user's deliveries keep that an email existed and
    // its status, but not the address, the message or the replies (which quote addresses).
    // erased_at says so, and lets a sent or failed row be without its message and address.
    // The retention job's indexes: final rows by age, processed events by age.
    id: '006-erasure-and-retention',
    sql: `
ALTER TABLE deliveries ADD COLUMN erased_at timestamptz;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_message_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_message_check
  CHECK (erased_at IS NOT NULL OR status IN ('suppressed', 'awaiting-recipient')
    OR (message IS NOT NULL AND recipient_address IS NOT NULL));
CREATE INDEX deliveries_final_created ON deliveries (created_at)
  WHERE status IN ('sent', 'failed', 'suppressed');
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
`,
  },
  {
    // The suppression list (issue 11 item 4): an address a final reply said has no mailbox
    // (reply_scope 'address'), with the reply, when, and the delivery that got it. Product emails
    // to it are suppressed 'address-undeliverable'; a lifted entry (an admin, or an email accepted
    // for the address) stays with who lifted it and when, until the address bounces again.
    // Addresses are kept lower-cased: mailbox providers treat the local part without case.
    id: '007-address-suppressions',
    sql: `
CREATE TABLE address_suppressions (
  address text PRIMARY KEY CHECK (address = lower(address)),
  delivery_id uuid REFERENCES deliveries (id) ON DELETE SET NULL,
  reply text NOT NULL,
  response_code integer,
  suppressed_at timestamptz NOT NULL,
  lifted_at timestamptz,
  lifted_by text,
  CHECK ((lifted_at IS NULL) = (lifted_by IS NULL))
);
CREATE INDEX address_suppressions_active ON address_suppressions (address) WHERE lifted_at IS NULL;
`,
  },
  bouncesMigration,
  unsubscribesMigration,
  fleetOutboxMigration,
];
