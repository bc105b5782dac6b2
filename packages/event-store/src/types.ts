import type { Queryable } from '@sitemail/db';

/** An event to append; the store gives it its position and time. */
export interface NewEvent {
  type: string;
  data: unknown;
  /** Event id; generated (UUID v4) when absent. */
  id?: string;
}

export interface StoredEvent {
  id: string;
  streamId: string;
  /** Position in its stream, from 1. */
  position: number;
  type: string;
  data: unknown;
  /** ISO 8601, UTC. */
  time: string;
  schemaVersion: number;
  /** W3C `traceparent` of the command that appended it (absent when no trace was active). */
  traceparent?: string;
}

export interface AppendOptions {
  /** The time the command was decided at; stored as the events' time. Default: now. */
  now?: Date;
  schemaVersion?: number;
  /**
   * Runs in the same transaction as the append, after the events are written: read models and
   * side tables (credentials, token hashes) change if and only if the events commit.
   */
  project?: (tx: Queryable, events: StoredEvent[]) => Promise<void>;
}

export interface EventStore {
  /**
   * Appends `events` to `streamId` if its current version (position of its last event, 0 for a
   * new stream) equals `expectedVersion`; otherwise throws StreamVersionConflictError and writes
   * nothing. The events enter the outbox in the same transaction.
   */
  append(
    streamId: string,
    expectedVersion: number,
    events: NewEvent[],
    options?: AppendOptions,
  ): Promise<StoredEvent[]>;
  /** The stream's events in order (those after `afterPosition` when given); [] for an unknown stream. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<StoredEvent[]>;
}

export interface ReadStreamOptions {
  /** Only events after this position (a snapshot's version, say). Default 0: all of them. */
  afterPosition?: number;
}

export class StreamVersionConflictError extends Error {
  constructor(
    readonly streamId: string,
    readonly expectedVersion: number,
    readonly actualVersion: number,
  ) {
    super(`stream ${streamId} is at version ${actualVersion}, not the expected ${expectedVersion}`);
    this.name = 'StreamVersionConflictError';
  }
}

/** An append's input is malformed; `field` names it (`events[2].type`). Nothing was written. */
export class InvalidAppendError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
    this.name = 'InvalidAppendError';
  }
}

/** An event id of the append is already stored (a retried command, usually). Nothing was written. */
export class DuplicateEventIdError extends Error {
  constructor(readonly streamId: string) {
    super(`an event id of this append to stream ${streamId} is already stored`);
    this.name = 'DuplicateEventIdError';
  }
}
