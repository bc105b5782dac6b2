import type { OutgoingMessage, Publisher } from '@sitemail/bus';
import type { Database } from '@sitemail/db';
import type { StoredEvent } from './types.ts';

export interface OutboxRelayOptions {
  db: Database;
  publisher: Publisher;
  topic: string;
  /** The message for an event (for accounts: `toWireMessage` of the contract envelope). */
  toMessage: (event: StoredEvent) => OutgoingMessage;
  /** Events per read and per publish call. Default 250 (with the prefetched batch, about 0.7 MB of 1 KB events in hand). */
  batchSize?: number;
  /**
   * How often an idle relay looks for new events without being told: the safety net. Every
   * committed append wakes it at once, from any process (NOTIFY on the schema's `events` channel).
   * Default 250.
   */
  pollIntervalMs?: number;
  /**
   * Called on every failed attempt (publish, database, lost lease) with its number from 1; the relay
   * retries after a backoff. Attempt 0: stop() gave up waiting for the batch in hand.
   */
  onError?: (err: unknown, attempt: number) => void;
  /**
   * Where the default `onError` reports (a pino-shaped logger; structural, so no dependency).
   * Without it and without `onError`: JSON lines on stderr.
   */
  logger?: { warn(obj: object, msg?: string): void };
  /** One cursor and one active instance per name. Default: the topic. */
  name?: string;
  /** How long a relay instance owns the name without renewing it. Default 30 000. */
  leaseMs?: number;
  /** Backoff between failed attempts: doubles from initialMs up to maxMs. Default 100 → 5 000. */
  retry?: { initialMs?: number; maxMs?: number };
  /**
   * How long stop() waits for the batch in hand (a publish to a down broker can take a while with
   * the client's own retries). After it, stop() resolves and the batch finishes in the background.
   * Default 10 000.
   */
  stopTimeoutMs?: number;
  /**
   * Called after the bus acknowledged `events` and the cursor moved past them; `ackedAt` (ms since
   * epoch) is when the bus acknowledged (for a lag measure, e.g. accounts' metrics). Must not throw.
   */
  onPublished?: (events: StoredEvent[], at: { ackedAt: number }) => void;
}

/** Where a relay's cursor stands: it has published every event at or before (xid, seq). */
export interface RelayPosition {
  xid: string;
  seq: string;
}

export interface OutboxRelay {
  /** Starts relaying in the background; does nothing when already started. */
  start(): void;
  /** Finishes the batch in hand (waiting up to stopTimeoutMs), gives the name up for another instance, and resolves. */
  stop(): Promise<void>;
  /** The cursor as this instance last saw it, or null before it first read it. */
  publishedUpTo(): RelayPosition | null;
  /** Whether this instance currently owns the name (another instance may be the active one). */
  isActive(): boolean;
  /** Resolves once every event committed before the call has been published (by any instance). */
  waitUntilIdle(): Promise<void>;
}

/** The relay lost its name to another instance (its lease ran out): it stops publishing and stands by. */
export class RelayLeaseLostError extends Error {
  constructor(name: string) {
    super(`outbox relay "${name}" lost its lease to another instance; standing by`);
    this.name = 'RelayLeaseLostError';
  }
}
