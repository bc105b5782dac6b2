import { randomUUID } from 'node:crypto';
import { context, isSpanContextValid, propagation, trace } from '@opentelemetry/api';
import type { Database, Queryable } from '@sitemail/db';
import {
  type AppendOptions,
  DuplicateEventIdError,
  type EventStore,
  InvalidAppendError,
  type NewEvent,
  type StoredEvent,
  StreamVersionConflictError,
} from './types.ts';
import { notifyAppended } from './wake.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const COLUMNS = 8;
export const MAX_EVENTS_PER_APPEND = 5000;

export interface EventRow {
  seq: string;
  xid: string;
  event_id: string;
  stream_id: string;
  position: number;
  type: string;
  data: unknown;
  time: Date | string;
  schema_version: number;
  traceparent: string | null;
}

export const EVENT_COLUMNS =
  'seq, xid::text AS xid, event_id, stream_id, position, type, data, time, schema_version, traceparent';

/** The active W3C trace context (the command's span), stored with the events for the relay. */
function activeTraceparent(): string | null {
  const active = context.active();
  const sc = trace.getSpanContext(active);
  if (!sc || !isSpanContextValid(sc)) return null;
  const carrier: Record<string, string> = {};
  propagation.inject(active, carrier);
  return carrier.traceparent ?? null;
}

export function toStoredEvent(row: EventRow): StoredEvent {
  return {
    id: row.event_id,
    streamId: row.stream_id,
    position: Number(row.position),
    type: row.type,
    data: row.data,
    time: (row.time instanceof Date ? row.time : new Date(row.time)).toISOString(),
    schemaVersion: Number(row.schema_version),
    ...(row.traceparent ? { traceparent: row.traceparent } : {}),
  };
}

/** Checks everything before the transaction starts, so bad input writes nothing and names the field. */
function validate(
  streamId: string,
  expectedVersion: number,
  events: NewEvent[],
  options: AppendOptions,
): void {
  if (typeof streamId !== 'string' || streamId.length === 0 || streamId.length > 200) {
    throw new InvalidAppendError('streamId', 'must be a string of 1 to 200 characters');
  }
  if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) {
    throw new InvalidAppendError(
      'expectedVersion',
      `must be an integer >= 0, got ${String(expectedVersion)}`,
    );
  }
  if (!Array.isArray(events)) throw new InvalidAppendError('events', 'must be an array');
  // Postgres takes at most 65535 parameters per statement; 8 per event.
  if (events.length > MAX_EVENTS_PER_APPEND) {
    throw new InvalidAppendError(
      'events',
      `must hold at most ${MAX_EVENTS_PER_APPEND} events, got ${events.length}`,
    );
  }
  const ids = new Set<string>();
  events.forEach((event, i) => {
    if (typeof event?.type !== 'string' || event.type.length === 0) {
      throw new InvalidAppendError(`events[${i}].type`, 'must be a non-empty string');
    }
    if (event.data === undefined)
      throw new InvalidAppendError(`events[${i}].data`, 'is required (use null for none)');
    if (event.id !== undefined) {
      if (typeof event.id !== 'string' || !UUID.test(event.id)) {
        throw new InvalidAppendError(`events[${i}].id`, 'must be a UUID');
      }
      if (ids.has(event.id.toLowerCase()))
        throw new InvalidAppendError(`events[${i}].id`, 'appears twice in one append');
      ids.add(event.id.toLowerCase());
    }
  });
  if (options.now !== undefined && (!(options.now instanceof Date) || Number.isNaN(options.now.getTime()))) {
    throw new InvalidAppendError('options.now', 'must be a valid Date');
  }
  if (
    options.schemaVersion !== undefined &&
    (!Number.isSafeInteger(options.schemaVersion) || options.schemaVersion < 1)
  ) {
    throw new InvalidAppendError('options.schemaVersion', 'must be an integer >= 1');
  }
}

/**
 * Takes the stream's version from `expected` to `next`, or reports the version it is at. This must
 * be the transaction's first write: the transaction id is assigned at the first write, and because
 * writers of one stream queue on this row, ids then follow each stream's commit order, which the
 * relay's (xid, seq) order relies on.
 */
async function bumpStreamVersion(
  tx: Queryable,
  streamId: string,
  expected: number,
  next: number,
): Promise<number | null> {
  const bumped =
    expected === 0
      ? await tx.query(
          'INSERT INTO streams (stream_id, version) VALUES ($1, $2) ON CONFLICT (stream_id) DO NOTHING',
          [streamId, next],
        )
      : await tx.query('UPDATE streams SET version = $3 WHERE stream_id = $1 AND version = $2', [
          streamId,
          expected,
          next,
        ]);
  if (bumped.rowCount === 1) return null;
  const current = await tx.query<{ version: number }>('SELECT version FROM streams WHERE stream_id = $1', [
    streamId,
  ]);
  return current.rows[0]?.version ?? 0;
}

class TransactionIdOvertaken extends Error {
  constructor() {
    super('a concurrent append to the stream overtook this one five times; retry the command');
  }
}

/**
 * Whether the stream's last event was written by a transaction with a higher id than ours. Writers
 * of a stream queue on its row, but Postgres hands out the id at the start of the UPDATE, before
 * the wait: a writer can take id 100, wait behind one that took 101, and then (if its expected
 * version happens to match the new one) commit the later position with the lower id, which the
 * relay's (xid, seq) order would publish first. Such a transaction starts over with a new id.
 */
async function overtaken(tx: Queryable, streamId: string): Promise<boolean> {
  const res = await tx.query<{ overtaken: boolean | null }>(
    `SELECT (SELECT xid FROM events WHERE stream_id = $1 ORDER BY position DESC LIMIT 1) > pg_current_xact_id() AS overtaken`,
    [streamId],
  );
  return res.rows[0]?.overtaken === true;
}

function isUniqueViolation(err: unknown, constraint: string): boolean {
  const e = err as { code?: unknown; constraint?: unknown; message?: unknown };
  return e?.code === '23505' && (e.constraint === constraint || String(e.message).includes(constraint));
}

/**
 * The event store on Postgres or PGlite. Run `prepareEventStore(db)` once before using it.
 * Appended events are the outbox: `createOutboxRelay` publishes them once committed.
 */
export function createEventStore(db: Database): EventStore {
  return {
    async append(streamId, expectedVersion, events, options = {}) {
      validate(streamId, expectedVersion, events, options);
      if (events.length === 0) return [];
      const time = (options.now ?? new Date()).toISOString();
      const schemaVersion = options.schemaVersion ?? 1;
      const traceparent = activeTraceparent();
      const stored: StoredEvent[] = events.map((event, i) => ({
        id: (event.id ?? randomUUID()).toLowerCase(),
        streamId,
        position: expectedVersion + i + 1,
        type: event.type,
        data: event.data,
        time,
        schemaVersion,
        ...(traceparent ? { traceparent } : {}),
      }));
      const params: unknown[] = [];
      const tuples = stored.map((e, i) => {
        const b = i * COLUMNS;
        params.push(
          e.id,
          e.streamId,
          e.position,
          e.type,
          JSON.stringify(e.data),
          e.time,
          e.schemaVersion,
          traceparent,
        );
        return `($${b + 1}::uuid, $${b + 2}, $${b + 3}::int, $${b + 4}, $${b + 5}::jsonb, $${b + 6}::timestamptz, $${b + 7}::int, $${b + 8})`;
      });
      const sql = `INSERT INTO events (event_id, stream_id, position, type, data, time, schema_version, traceparent) VALUES ${tuples.join(', ')}`;
      for (let attempt = 1; ; attempt++) {
        try {
          await db.transaction(async (tx) => {
            const actual = await bumpStreamVersion(
              tx,
              streamId,
              expectedVersion,
              expectedVersion + stored.length,
            );
            if (actual !== null) throw new StreamVersionConflictError(streamId, expectedVersion, actual);
            if (expectedVersion > 0 && (await overtaken(tx, streamId))) throw new TransactionIdOvertaken();
            await tx.query(sql, params);
            await options.project?.(tx, stored);
            await notifyAppended(tx);
          });
          break;
        } catch (err) {
          if (err instanceof TransactionIdOvertaken && attempt < 5) continue;
          if (isUniqueViolation(err, 'events_event_id_key')) throw new DuplicateEventIdError(streamId);
          throw err;
        }
      }
      return stored;
    },

    async readStream(streamId, options = {}) {
      const after = options.afterPosition ?? 0;
      const res = await db.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM events WHERE stream_id = $1 AND position > $2 ORDER BY position`,
        [streamId, after],
      );
      return res.rows.map(toStoredEvent);
    },
  };
}
