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
  /** Backoff between redeliveries of a failed batch: doubles from `initialMs` (250) up to `maxMs` (30 000). */
  retryBackoff?: { initialMs?: number; maxMs?: number };
  /**
   * Told about every failed attempt (decode bug, handler error, dead-letter publish failure) before
   * the backoff. Default: one line on stderr naming the group, topic, partition and offsets, never the payload.
   */
  onError?: (error: unknown, context: BatchErrorContext) => void;
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
  /** Joins the group and starts consuming; resolves once running. */
  start(): Promise<void>;
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
