/** A message as consumers see it, from Kafka or from the in-process bus. */
export interface BusMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  /** Broker timestamp, ms since epoch. */
  timestamp: number;
}

export interface OutgoingMessage {
  key: string;
  value: string | Buffer;
  headers?: Record<string, string>;
}

export interface Publisher {
  /**
   * Sends the messages to `topic` and resolves once the bus has acknowledged all of them
   * (acks from all in-sync replicas on Kafka). Messages with the same key keep their order.
   * Rejects when any message was not acknowledged; the caller retries the whole call.
   */
  publish(topic: string, messages: OutgoingMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by a `decode` to send one message to the dead-letter topic instead of the handler. */
export class MalformedMessageError extends Error {
  constructor(
    message: string,
    readonly problems: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'MalformedMessageError';
  }
}

export interface DecodedMessage<T> {
  message: BusMessage;
  value: T;
}

export interface ConsumerOptions<T> {
  groupId: string;
  topics: string[];
  /** Start from the earliest retained message when the group has no committed offset. */
  fromBeginning?: boolean;
  /**
   * Turns a raw message into T. Throwing MalformedMessageError sends the message to `deadLetterTopic`
   * (with headers saying why) and the consumer moves on; any other error stops the batch unacknowledged.
   */
  decode: (message: BusMessage) => T;
  deadLetterTopic: string;
  /**
   * Processes one batch (per partition, in offset order). Offsets are committed only after it
   * resolves; when it throws, the batch is redelivered (after a backoff). Must be idempotent.
   */
  handleBatch: (batch: DecodedMessage<T>[]) => Promise<void>;
  /** Most messages handed to one `handleBatch` call (default 500); a larger fetched batch is split. */
  maxBatchSize?: number;
  /**
   * How many partitions' batches are handled at the same time (default 1: one batch at a time).
   * Batches of one partition still come one after another, in offset order, so per-key order holds;
   * raise it when a handler waits on I/O (SMTP, a database) and the topic has several partitions.
   * Kafka only: the in-process bus has one partition per topic.
   */
  partitionsConsumedConcurrently?: number;
  /** Backoff between redeliveries of a failed batch: doubles from `initialMs` (250) up to `maxMs` (30 000). */
  retryBackoff?: { initialMs?: number; maxMs?: number };
  /**
   * Told about every failed attempt (decode bug, handler error, dead-letter publish failure) before
   * the backoff. Default: one line on stderr naming the group, topic, partition and offsets, never the payload.
   */
  onError?: (error: unknown, context: BatchErrorContext) => void;
  /** Told about every change of `Consumer.state()` (joining, assigned, retrying, stopped), e.g. to log it. */
  onStateChange?: (state: ConsumerState) => void;
  /**
   * Told after each committed batch (and when a partition is taken up) how many messages of the
   * partition are still to be handled: Kafka's high watermark minus the committed offset (e.g. for
   * a consumer-lag metric). A listener's error is ignored.
   */
  onLag?: (lag: { topic: string; partition: number; messages: number }) => void;
  /** Told how many messages of a batch went to the dead-letter topic, once they are there. A listener's error is ignored. */
  onDeadLettered?: (count: number, topic: string) => void;
}

/**
 * Where a consumer is in its group: `joining` until the group coordinator assigned it partitions
 * (a member killed without leaving holds its partitions until its session times out, so this
 * can take that long), `assigned` while it consumes, `retrying` after a failed join or a
 * consumer crash (it starts again after `retryInMs`), `stalled` when the progress watchdog found
 * it assigned, with messages waiting, and no batch for the progress timeout (Kafka: it is being
 * restarted, `reason` says what was seen; `retrying` follows), `stopped` before start and after stop.
 */
export interface ConsumerState {
  phase: 'stopped' | 'joining' | 'assigned' | 'retrying' | 'stalled';
  groupId: string;
  /** When this phase began (ms since epoch). */
  since: number;
  /** Failed attempts in a row (retrying), reset by each successful join. */
  attempt?: number;
  /** Why the last attempt failed (retrying), or what the watchdog saw (stalled): never a payload. */
  reason?: string;
  retryInMs?: number;
  /**
   * Partitions this member was given (assigned; 0 when the group has more members than
   * partitions), or those found behind (stalled).
   */
  partitions?: number;
}

export interface BatchErrorContext {
  groupId: string;
  topic: string;
  partition: number;
  firstOffset: string;
  lastOffset: string;
  /** 1 for the first failure of this batch. */
  attempt: number;
  retryInMs: number;
}

export interface Consumer {
  /**
   * Starts joining the group and consuming in the background; a failed join or a crashed
   * consumer is retried with backoff until `stop()`, never thrown. The promise resolves once the
   * consumer is first assigned (or is stopped before that); callers that must not wait on the
   * group (a service's start) do not await it and watch `state()` instead.
   */
  start(): Promise<void>;
  /** Where the consumer is now (see ConsumerState). */
  state(): ConsumerState;
  /** Finishes the batch in hand, commits, leaves the group. */
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'kafka' | 'in-process';
  publisher(): Promise<Publisher>;
  consumer<T>(options: ConsumerOptions<T>): Consumer;
  /** Closes every publisher and consumer this bus made. */
  close(): Promise<void>;
}
