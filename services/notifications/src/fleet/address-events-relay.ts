import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Bus, Publisher } from '@sitemail/bus';
import { type AddressEvent, topics } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import {
  deleteOutboxRows,
  outboxIsEmpty,
  readOutbox,
  releaseRelayLease,
  renewRelayLease,
  takeRelayLease,
} from '../store/address-events-outbox.ts';
import { type AddressEventRow, toAddressEventMessage } from './address-events.ts';

/**
 * The relay of notifications' address events (issue 11 item 6): rows of `address_events_outbox`
 * (migration 011) to `notifications.address-events.v1`, in `seq` order, at least once, then
 * deleted. Why not `@sitemail/event-store`'s relay: it reads the event store's own `events` table
 * and cursor (its `(xid, seq)` horizon exists because rows stay there for good); here a row lives
 * only until Kafka acknowledged it, so a plain `ORDER BY seq` read cannot skip a late commit, and
 * the relay needs no cursor. One active instance per name by a lease (as the event store's relay,
 * for the same reasons: no held lock, no transaction across the Kafka round trip); a stalled
 * instance that lost its lease may publish a batch again, which the `position` lets consumers
 * ignore. Woken by the outbox trigger's NOTIFY on commit, polling as the safety net.
 */
export interface AddressEventsRelayOptions {
  db: Database;
  publisher: Publisher;
  /** Rows per read and publish. Default 100 (address events are rare: bounces and liftings). */
  batchSize?: number;
  /** Safety-net poll when nothing woke the relay (ms). Default 1000. */
  pollIntervalMs?: number;
  /** How long an instance owns the relay without renewing (ms). Default 30 000. */
  leaseMs?: number;
  /** Every failed attempt (publish or database), numbered from 1; the relay retries after a backoff. */
  onError?: (err: unknown, attempt: number) => void;
  /** A row the contract cannot carry, set aside (deleted) so the topic does not stall behind it. */
  onSetAside?: (row: AddressEventRow, problems: string[]) => void;
  onPublished?: (events: AddressEvent[]) => void;
}

export interface AddressEventsRelay {
  start(): void;
  stop(): Promise<void>;
  /** Resolves once the outbox is empty (every row committed before the call is published). */
  waitUntilIdle(timeoutMs?: number): Promise<void>;
  isActive(): boolean;
}

export const ADDRESS_EVENTS_RELAY_NAME = 'address-events';

export function createAddressEventsRelay(o: AddressEventsRelayOptions): AddressEventsRelay {
  const batchSize = o.batchSize ?? 100;
  const pollIntervalMs = o.pollIntervalMs ?? 1000;
  const leaseMs = o.leaseMs ?? 30_000;
  const owner = `${hostname()}:${process.pid}:${randomUUID()}`;
  let running = false;
  let loop: Promise<void> | undefined;
  let leaseValidUntil = 0;
  let wakeSleep: (() => void) | undefined;
  let woken = false;
  let unlisten: (() => Promise<void>) | undefined;

  const wake = () => {
    woken = true;
    wakeSleep?.();
  };
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || !running) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeSleep = undefined;
        resolve();
      }
      wakeSleep = done;
    });

  async function claim(): Promise<boolean> {
    const startedAt = Date.now();
    const held = await takeRelayLease(o.db, ADDRESS_EVENTS_RELAY_NAME, owner, leaseMs);
    leaseValidUntil = held ? startedAt + leaseMs : 0;
    return held;
  }

  async function turn(): Promise<'idle' | 'busy' | 'standby'> {
    // Cleared before anything is read: a wake-up from here on means a commit after this read.
    woken = false;
    if (Date.now() > leaseValidUntil - (leaseMs * 2) / 3 && !(await claim())) return 'standby';
    const rows = await readOutbox(o.db, batchSize);
    if (rows.length === 0) return 'idle';
    const built = rows.map((row) => ({ row, built: toAddressEventMessage(row) }));
    const publishable = built.flatMap((b) => (b.built.ok ? [b.built] : []));
    for (const b of built) if (!b.built.ok) o.onSetAside?.(b.row, b.built.problems);
    if (publishable.length > 0) {
      await o.publisher.publish(
        topics.notificationsAddressEvents,
        publishable.map((p) => p.message),
      );
    }
    await deleteOutboxRows(
      o.db,
      rows.map((r) => r.seq),
    );
    const renewedAt = Date.now();
    const renewed = await renewRelayLease(
      o.db,
      ADDRESS_EVENTS_RELAY_NAME,
      owner,
      publishable.length,
      leaseMs,
    );
    leaseValidUntil = renewed ? renewedAt + leaseMs : 0;
    o.onPublished?.(publishable.map((p) => p.event));
    return 'busy';
  }

  async function run() {
    let failures = 0;
    while (running) {
      try {
        const state = await turn();
        failures = 0;
        if (state !== 'busy') await sleep(pollIntervalMs);
      } catch (err) {
        failures++;
        try {
          o.onError?.(err, failures);
        } catch {
          // A failing error handler must not stop the relay.
        }
        // 100 ms doubling to 5 s; only stop() ends a backoff early (a wake-up would not help).
        const backoff = Math.min(5000, 100 * 2 ** Math.min(failures - 1, 10));
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          wakeSleep = () => {
            if (!running) {
              clearTimeout(timer);
              resolve();
            }
          };
        });
      }
    }
    if (leaseValidUntil > 0) {
      leaseValidUntil = 0;
      await releaseRelayLease(o.db, ADDRESS_EVENTS_RELAY_NAME, owner).catch(() => {
        // The lease runs out by itself.
      });
    }
  }

  return {
    start() {
      if (running) return;
      running = true;
      unlisten = o.db.listen('address_events', wake);
      loop = (loop ?? Promise.resolve()).then(run);
    },
    async stop() {
      if (!running) return;
      running = false;
      void unlisten?.();
      wakeSleep?.();
      await loop;
    },
    isActive: () => running && leaseValidUntil > Date.now(),
    async waitUntilIdle(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await outboxIsEmpty(o.db)) return;
        if (Date.now() > deadline) throw new Error(`address events still unpublished after ${timeoutMs} ms`);
        wake();
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/**
 * The relay as a plugin of the notifications app, when it has a bus: the publisher connects in
 * the background (retried, 500 ms doubling to 30 s) so the start never waits on Kafka; rows wait
 * in the outbox meanwhile. In `npm start` the bus is in-process and shared with accounts, so the
 * events reach it there too. Stopped on close, before the database goes.
 */
export const addressEventsRelayPlugin = fp(
  async (app: FastifyInstance, opts: { db: Database; bus: Bus | undefined; pollIntervalMs?: number }) => {
    const bus = opts.bus;
    if (!bus) return;
    const log = app.log.child({ component: 'address-events-relay' });
    let stopped = false;
    let publisher: Publisher | undefined;
    let relay: AddressEventsRelay | undefined;
    let cancelWait: (() => void) | undefined;
    const connect = async () => {
      for (let attempt = 1; !stopped; attempt++) {
        try {
          const connected = await bus.publisher();
          if (stopped) return void (await connected.close().catch(() => {}));
          publisher = connected;
          relay = createAddressEventsRelay({
            db: opts.db,
            publisher: connected,
            ...(opts.pollIntervalMs !== undefined ? { pollIntervalMs: opts.pollIntervalMs } : {}),
            onError: (err, n) => {
              if (n === 1 || n % 20 === 0)
                log.warn(
                  { attempt: n, reason: err instanceof Error ? err.message : String(err) },
                  'address events relay retrying',
                );
            },
            onPublished: (events) => app.notificationsMetrics.onAddressEventsPublished(events),
            onSetAside: (row, problems) => {
              app.notificationsMetrics.onAddressEventSetAside();
              log.error(
                { seq: row.seq, type: row.type, problems },
                'address event set aside: the contract cannot carry it',
              );
            },
          });
          relay.start();
          return;
        } catch (err) {
          log.warn(
            { attempt, reason: err instanceof Error ? err.message : String(err) },
            'address events relay: connecting to the bus failed, retrying',
          );
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Math.min(30_000, 500 * 2 ** Math.min(attempt - 1, 10)));
            cancelWait = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
      }
    };
    app.addHook('onReady', async () => {
      void connect();
    });
    app.decorate('addressEventsRelay', () => relay);
    app.addHook('onClose', async () => {
      stopped = true;
      cancelWait?.();
      await relay?.stop();
      await publisher?.close();
    });
  },
  { name: 'notifications-address-events-relay', dependencies: ['notifications-db', 'notifications-metrics'] },
);

declare module 'fastify' {
  interface FastifyInstance {
    /** The address events relay once its publisher connected (tests wait on it). */
    addressEventsRelay?: () => AddressEventsRelay | undefined;
  }
}
