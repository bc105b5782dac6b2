import type { Migration } from '@sitemail/db';

/**
 * Telling the fleet (issue 11 item 6): every listing and lifting of the suppression list writes
 * its address event (contracts: `notifications.address-events.v1`) here, in the statement that
 * changes the list, so an event is published if and only if the change committed. The relay
 * (fleet/address-events-relay.ts) publishes rows in `seq` order and deletes them once Kafka
 * acknowledged: no cursor, so a row whose transaction committed late is read on the next turn,
 * never skipped. Writers of one address queue on its `address_suppressions` row before they insert
 * here, so per address `seq` follows commit order; `seq` is also the event's `position`.
 * `delivery_id` has no foreign key: the event says which delivery it was even if retention
 * removed the row meanwhile. The trigger wakes the relay on commit (LISTEN on `address_events`,
 * `<schema>__address_events` as `notify()` of @sitemail/db names it), whoever wrote the row.
 * `address_events_relay`: one active relay per name, by lease (not a held lock or transaction).
 */
export const fleetOutboxMigration: Migration = {
  id: '011-fleet-outbox',
  sql: `
CREATE TABLE address_events_outbox (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  address text NOT NULL CHECK (address = lower(address)),
  type text NOT NULL CHECK (type IN ('EmailAddressUndeliverable', 'EmailAddressDeliverable')),
  cause text NOT NULL CHECK (cause IN ('smtp-reply', 'dsn', 'admin-lifted', 'accepted')),
  delivery_id uuid,
  reply text,
  response_code integer,
  occurred_at timestamptz NOT NULL,
  CHECK ((type = 'EmailAddressUndeliverable') = (reply IS NOT NULL))
);

CREATE TABLE address_events_relay (
  name text PRIMARY KEY,
  owner text,
  lease_until timestamptz,
  published bigint NOT NULL DEFAULT 0
);

-- On one line: the migrator splits statements at a semicolon that ends a line.
CREATE FUNCTION address_events_wake() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN PERFORM pg_notify(left(current_schema(), 47) || '__address_events', ''); RETURN NULL; END $$;
CREATE TRIGGER address_events_outbox_wake AFTER INSERT ON address_events_outbox
  FOR EACH STATEMENT EXECUTE FUNCTION address_events_wake();
`,
};
