import type { Database } from '@sitemail/db';
import type { AddressEventRow } from '../fleet/address-events.ts';

/**
 * Every statement of the address events relay (fleet/address-events-relay.ts): its lease row in
 * `address_events_relay` and the rows of `address_events_outbox` (migration 011). The rows are
 * written by the suppression list's own statements (store/suppressions.ts, store/bounces.ts).
 */
const COLUMNS = `seq::text AS seq, event_id, address, type, cause, delivery_id, reply, response_code, occurred_at`;

/** Takes or keeps the lease of relay `name` for `leaseMs`; false when another live owner holds it. */
export async function takeRelayLease(
  db: Database,
  name: string,
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  await db.query('INSERT INTO address_events_relay (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
  const { rows } = await db.query(
    `UPDATE address_events_relay SET owner = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond'
     WHERE name = $1 AND (owner IS NULL OR owner = $2 OR lease_until < clock_timestamp()) RETURNING name`,
    [name, owner, leaseMs],
  );
  return rows.length > 0;
}

/** Counts `published` rows and renews the lease; false when the lease is no longer ours. */
export async function renewRelayLease(
  db: Database,
  name: string,
  owner: string,
  published: number,
  leaseMs: number,
): Promise<boolean> {
  const { rows } = await db.query(
    `UPDATE address_events_relay SET published = published + $3,
       lease_until = clock_timestamp() + $4 * interval '1 millisecond'
     WHERE name = $1 AND owner = $2 RETURNING name`,
    [name, owner, published, leaseMs],
  );
  return rows.length > 0;
}

export async function releaseRelayLease(db: Database, name: string, owner: string): Promise<void> {
  await db.query(
    'UPDATE address_events_relay SET owner = NULL, lease_until = NULL WHERE name = $1 AND owner = $2',
    [name, owner],
  );
}

/** The oldest `limit` rows in commit order (`seq`). */
export async function readOutbox(db: Database, limit: number): Promise<AddressEventRow[]> {
  const { rows } = await db.query<AddressEventRow>(
    `SELECT ${COLUMNS} FROM address_events_outbox ORDER BY seq LIMIT $1`,
    [limit],
  );
  return rows;
}

export async function deleteOutboxRows(db: Database, seqs: string[]): Promise<void> {
  await db.query('DELETE FROM address_events_outbox WHERE seq = ANY($1::bigint[])', [seqs]);
}

export async function outboxIsEmpty(db: Database): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM address_events_outbox LIMIT 1');
  return rows.length === 0;
}
