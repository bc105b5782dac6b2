import { type Database, type Migration, migrate } from '@sitemail/db';

/**
 * `events.xid` is the id of the transaction that wrote the row. The relay reads only rows whose
 * transaction is older than every transaction still running (`pg_snapshot_xmin`), in (xid, seq)
 * order: a sequence alone is handed out before commit, so a cursor on it would skip a row whose
 * transaction commits after a later one.
 */
export const eventStoreMigrations: Migration[] = [
  {
    id: '001-events-streams-outbox',
    sql: `
CREATE TABLE streams (
  stream_id text PRIMARY KEY,
  version integer NOT NULL CHECK (version >= 0)
);
CREATE TABLE events (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE,
  stream_id text NOT NULL,
  position integer NOT NULL CHECK (position >= 1),
  type text NOT NULL,
  data jsonb NOT NULL,
  time timestamptz NOT NULL,
  schema_version integer NOT NULL,
  xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
  UNIQUE (stream_id, position)
);
CREATE INDEX events_relay_order ON events (xid, seq);
CREATE TABLE outbox_relays (
  name text PRIMARY KEY,
  xid xid8 NOT NULL DEFAULT '0',
  seq bigint NOT NULL DEFAULT 0,
  published bigint NOT NULL DEFAULT 0,
  owner text,
  lease_until timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    // The W3C trace context of the command that appended the event (null when none was active):
    // the relay puts it in the message's `traceparent` header, so the trace goes on to the email.
    id: '002-events-traceparent',
    sql: 'ALTER TABLE events ADD COLUMN traceparent text',
  },
];

/**
 * Applies the event store's migrations (idempotent, safe when several processes start at once).
 * Call it once at start, before `createEventStore` is used; `createOutboxRelay` calls it itself.
 */
export async function prepareEventStore(db: Database): Promise<void> {
  await migrate(db, 'event-store', eventStoreMigrations);
}
