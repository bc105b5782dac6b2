import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { OutgoingMessage } from '@sitemail/bus';
import {
  type OutboxRelay,
  type OutboxRelayOptions,
  RelayLeaseLostError,
  type RelayPosition,
} from './relay-types.ts';
import { prepareEventStore } from './schema.ts';
import { createSleeper } from './sleeper.ts';
import { EVENT_COLUMNS, type EventRow, toStoredEvent } from './store.ts';
import type { StoredEvent } from './types.ts';
import { onAppended } from './wake.ts';

export {
  type OutboxRelay,
  type OutboxRelayOptions,
  RelayLeaseLostError,
  type RelayPosition,
} from './relay-types.ts';

const ZERO: RelayPosition = { xid: '0', seq: '0' };
const atOrAfter = (a: RelayPosition, b: RelayPosition) =>
  BigInt(a.xid) > BigInt(b.xid) || (a.xid === b.xid && BigInt(a.seq) >= BigInt(b.seq));

/**
 * Reads committed events in (xid, seq) order, only those written by transactions older than every
 * transaction still running: a row below `pg_snapshot_xmin` is committed or gone for good, so
 * nothing can later appear behind the cursor. The snapshot includes this statement's own view.
 * ORDER BY names `events.xid`: a bare `xid` would mean the output column, the text form, and
 * "1000" sorts before "999".
 */
const READ_BATCH = `SELECT ${EVENT_COLUMNS} FROM events
  WHERE (xid, seq) > ($1::xid8, $2::bigint) AND xid < pg_snapshot_xmin(pg_current_snapshot())
  ORDER BY events.xid, events.seq LIMIT $3`;

/**
 * The message with the event's W3C `traceparent` header (its command's trace context), unless the
 * message already names one: the consumer continues that trace through to the email.
 */
function withTraceparent(message: OutgoingMessage, event: StoredEvent): OutgoingMessage {
  if (!event.traceparent || message.headers?.traceparent) return message;
  return { ...message, headers: { ...message.headers, traceparent: event.traceparent } };
}

/** Whether committed events wait beyond the cursor that READ_BATCH may not take yet. */
const HELD_BACK = 'SELECT 1 FROM events WHERE (xid, seq) > ($1::xid8, $2::bigint) LIMIT 1';

/**
 * Publishes committed events of the store to `topic`, in order, at least once.
 *
 * One instance per name is active: it holds a lease on the name's cursor row and renews it with
 * every cursor move; the others stand by and take over when the lease is released (stop) or runs
 * out (crash). The cursor moves only after the publisher acknowledged, and only from the position
 * the batch was read at (compare-and-set), so a stale instance can never move it.
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { db, publisher, topic, toMessage } = options;
  const name = options.name ?? topic;
  const batchSize = options.batchSize ?? 250;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const leaseMs = options.leaseMs ?? 30_000;
  const initialBackoff = options.retry?.initialMs ?? 100;
  const maxBackoff = options.retry?.maxMs ?? 5_000;
  const logger = options.logger ?? {
    warn: (obj: object, msg?: string) =>
      process.stderr.write(
        `${JSON.stringify({ level: 40, time: Date.now(), name: 'outbox-relay', ...obj, msg })}\n`,
      ),
  };
  const onError =
    options.onError ??
    ((err: unknown, attempt: number) => {
      const reason = (err as Error)?.message ?? String(err);
      logger.warn(
        { relay: name, attempt, reason },
        `outbox relay "${name}": attempt ${attempt} failed: ${reason}`,
      );
    });
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10_000) {
    throw new RangeError(`batchSize must be an integer 1..10000, got ${batchSize}`);
  }
  if (!(pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be > 0, got ${pollIntervalMs}`);
  if (!(leaseMs >= 1000)) throw new RangeError(`leaseMs must be >= 1000, got ${leaseMs}`);
  if (typeof topic !== 'string' || topic.length === 0)
    throw new RangeError('topic must be a non-empty string');

  const stopTimeoutMs = options.stopTimeoutMs ?? 10_000;
  const report = (err: unknown, attempt: number) => {
    try {
      onError(err, attempt);
    } catch {
      // A failing error handler must not stop the relay.
    }
  };
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  let running = false;
  let loop: Promise<void> | undefined;
  let cursor: RelayPosition | null = null;
  let leaseValidUntil = 0;
  let prepared = false;
  let unsubscribe: (() => Promise<void>) | undefined;

  // A committed append (its NOTIFY, from any process) ends an idle sleep early; only stop() ends a backoff.
  const { wake, interrupt, sleep, clearWake } = createSleeper(() => running);
  const backoffMs = (attempt: number) =>
    Math.min(maxBackoff, initialBackoff * 2 ** Math.min(attempt - 1, 20)) * (0.8 + Math.random() * 0.4);

  const waiters: Array<{ target: RelayPosition; resolve: () => void; reject: (e: Error) => void }> = [];
  const settleWaiters = () => {
    if (!cursor) return;
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i];
      if (w && atOrAfter(cursor, w.target)) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  let registered = false;
  async function claim(): Promise<boolean> {
    if (!registered) {
      await db.query('INSERT INTO outbox_relays (name) VALUES ($1) ON CONFLICT (name) DO NOTHING', [name]);
      registered = true;
    }
    const sentAt = Date.now();
    const res = await db.query<RelayPosition>(
      `UPDATE outbox_relays SET owner = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond'
       WHERE name = $1 AND (owner IS NULL OR owner = $2 OR lease_until < clock_timestamp())
       RETURNING xid::text AS xid, seq::text AS seq`,
      [name, owner, leaseMs],
    );
    const row = res.rows[0];
    if (!row) {
      leaseValidUntil = 0;
      return false;
    }
    cursor = { xid: row.xid, seq: row.seq };
    leaseValidUntil = sentAt + leaseMs;
    return true;
  }

  const readBatch = (from: RelayPosition) => db.query<EventRow>(READ_BATCH, [from.xid, from.seq, batchSize]);

  async function advance(from: RelayPosition, to: RelayPosition, count: number): Promise<boolean> {
    const sentAt = Date.now();
    const res = await db.query(
      `UPDATE outbox_relays SET xid = $5::xid8, seq = $6::bigint, published = published + $7,
         lease_until = clock_timestamp() + $8 * interval '1 millisecond', updated_at = clock_timestamp()
       WHERE name = $1 AND owner = $2 AND xid = $3::xid8 AND seq = $4::bigint`,
      [name, owner, from.xid, from.seq, to.xid, to.seq, count, leaseMs],
    );
    if (res.rowCount !== 1) return false;
    leaseValidUntil = sentAt + leaseMs;
    return true;
  }

  async function standBy(): Promise<void> {
    // Another instance is active: keep our view of its cursor current for waitUntilIdle.
    if (waiters.length > 0) {
      const res = await db.query<RelayPosition>(
        'SELECT xid::text AS xid, seq::text AS seq FROM outbox_relays WHERE name = $1',
        [name],
      );
      if (res.rows[0]) cursor = res.rows[0];
      settleWaiters();
    }
    await sleep(pollIntervalMs, true);
  }

  async function run(): Promise<void> {
    let failures = 0;
    let heldBack = 0; // empty reads in a row with committed events beyond the horizon
    // Two things overlap with publishing a batch: reading the next one (which starts where this
    // one ends) and persisting the cursor past the previous one (a commit, so a disk flush). A
    // batch's cursor move starts only after the previous move succeeded, and from its position.
    let prefetch: { from: RelayPosition; rows: Promise<{ rows: EventRow[] }> } | null = null;
    let readFrom: RelayPosition | null = null; // end of the last published batch; null: the cursor
    let moving: Promise<void> | null = null;
    const settleMove = async () => {
      const move = moving;
      moving = null;
      await move;
    };
    while (running) {
      try {
        if (!prepared) {
          await prepareEventStore(db);
          prepared = true;
        }
        // Renew early (a third of the lease used) so a busy relay never drifts near expiry.
        if (Date.now() > leaseValidUntil - (leaseMs * 2) / 3) {
          await settleMove();
          prefetch = null;
          readFrom = null;
          if (!(await claim())) {
            await standBy();
            continue;
          }
        }
        const from = readFrom ?? cursor ?? ZERO;
        clearWake();
        const rows =
          prefetch && prefetch.from === from ? (await prefetch.rows).rows : (await readBatch(from)).rows;
        prefetch = null;
        const last = rows[rows.length - 1];
        if (!last) {
          await settleMove();
          settleWaiters();
          // Committed events can sit behind an older transaction still running (the horizon); its
          // end sends no NOTIFY when it appended nothing, so look again soon instead of at the poll.
          heldBack = (await db.query(HELD_BACK, [from.xid, from.seq])).rows.length > 0 ? heldBack + 1 : 0;
          await sleep(
            heldBack > 0 ? Math.min(pollIntervalMs, 2 ** Math.min(heldBack, 8)) : pollIntervalMs,
            true,
          );
          continue;
        }
        heldBack = 0;
        const to: RelayPosition = { xid: last.xid, seq: last.seq };
        const events = rows.map(toStoredEvent);
        const messages = events.map((event) => withTraceparent(toMessage(event), event));
        if (rows.length === batchSize) {
          const next = readBatch(to);
          next.catch(() => {}); // awaited (and its error handled) on the next turn, or dropped
          prefetch = { from: to, rows: next };
        }
        await publisher.publish(topic, messages);
        const ackedAt = Date.now(); // for onPublished: lag is commit → ack, not → cursor moved
        await settleMove();
        const base = cursor ?? ZERO;
        const move = advance(base, to, rows.length).then((moved) => {
          if (!moved) {
            leaseValidUntil = 0;
            throw new RelayLeaseLostError(name);
          }
          cursor = to;
          options.onPublished?.(events, { ackedAt });
          settleWaiters();
        });
        move.catch(() => {}); // awaited (and its error handled) by settleMove
        moving = move;
        readFrom = to; // the prefetch (if any) was read from this very position object
        failures = 0;
      } catch (err) {
        // A failed publish or cursor move: start again from the cursor as persisted.
        prefetch = null;
        readFrom = null;
        await settleMove().catch((e: unknown) => report(e, failures + 1));
        failures++;
        report(err, failures);
        await sleep(backoffMs(failures), false);
      }
    }
    await settleMove().catch((e: unknown) => report(e, failures + 1));
    // Stopped: give the name up so a standby takes over now rather than when the lease runs out.
    if (leaseValidUntil > 0) {
      leaseValidUntil = 0;
      await db
        .query('UPDATE outbox_relays SET owner = NULL, lease_until = NULL WHERE name = $1 AND owner = $2', [
          name,
          owner,
        ])
        .catch(() => {
          // The lease runs out by itself; another instance takes over then.
        });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      unsubscribe = onAppended(db, wake);
      // A loop that outlived a timed-out stop() finishes first: one loop per instance at a time.
      loop = (loop ?? Promise.resolve()).then(run);
    },
    async stop() {
      if (!running) return;
      running = false;
      void unsubscribe?.(); // never fails; the LISTEN connection itself closes with the database
      interrupt();
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        loop?.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), stopTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      for (const w of waiters.splice(0)) w.reject(new Error(`outbox relay "${name}" stopped`));
      if (!finished) {
        report(
          new Error(
            `outbox relay "${name}": the batch in hand was not acknowledged within ${stopTimeoutMs} ms of stop(); ` +
              'the name is given up when it is, or when the lease runs out',
          ),
          0,
        );
      }
    },
    publishedUpTo: () => (cursor ? { ...cursor } : null),
    isActive: () => running && leaseValidUntil > Date.now(),
    async waitUntilIdle() {
      if (!running) throw new Error(`outbox relay "${name}" is not running`);
      if (!prepared) await prepareEventStore(db);
      const res = await db.query<RelayPosition>(
        'SELECT xid::text AS xid, seq::text AS seq FROM events ORDER BY events.xid DESC, events.seq DESC LIMIT 1',
      );
      const target = res.rows[0];
      if (!target) return;
      await new Promise<void>((resolve, reject) => {
        waiters.push({ target, resolve, reject });
        settleWaiters();
        wake();
      });
    },
  };
}
