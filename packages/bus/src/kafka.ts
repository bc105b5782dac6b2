import {
  Kafka,
  type Consumer as KafkaConsumer,
  type Producer as KafkaProducer,
  type logCreator,
  logLevel,
  Partitioners,
} from 'kafkajs';
import { type BusLogger, stderrLogger } from './log.ts';
import { assertOutgoing, assertTopicName, deadLetterHeaders, headersToStrings } from './messages.ts';
import {
  batchErrorReporter,
  chunks,
  DEFAULT_MAX_BATCH_SIZE,
  type DeadLetter,
  processBatch,
} from './process-batch.ts';
import type { Bus, BusMessage, Consumer, ConsumerOptions, Publisher } from './types.ts';

export type BusLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** kafkajs log level (default 'warn'); lines never include message values. */
  logLevel?: BusLogLevel;
  /** Where kafkajs's lines and consumer retries go (default: JSON lines on stderr). */
  logger?: BusLogger;
  /** Consumer group session timeout (default 30 000 ms); tests use a few seconds. */
  sessionTimeoutMs?: number;
  /** How long a rebalance waits for members to rejoin (default 60 000 ms). */
  rebalanceTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /**
   * Longest a fetch waits for new messages (default 1000 ms). stop() waits for the fetch in
   * flight, so this bounds how long a stop takes on an idle topic.
   */
  maxWaitTimeMs?: number;
  /** kafkajs request retries (default 8, doubling from 300 ms up to 30 s). */
  retries?: number;
}

const LEVELS: Record<BusLogLevel, logLevel> = {
  nothing: logLevel.NOTHING,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.INFO,
  debug: logLevel.DEBUG,
};
const METHODS: Partial<Record<logLevel, 'error' | 'warn' | 'info' | 'debug'>> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * kafkajs's default logger prints every extra field it is given, which can include message
 * payloads (and they may carry sealed tokens). This one passes on the namespace, the message and
 * an error's message, nothing else.
 */
export const quietLogCreator =
  (clientId: string, logger: BusLogger = stderrLogger): logCreator =>
  () =>
  ({ namespace, level, log }) => {
    const error = (log as { error?: unknown }).error;
    const reason = error === undefined ? undefined : error instanceof Error ? error.message : String(error);
    const method = METHODS[level] ?? 'info';
    logger[method]?.(
      { component: 'kafkajs', clientId, namespace, ...(reason === undefined ? {} : { reason }) },
      `kafkajs ${namespace}: ${log.message}${reason === undefined ? '' : ` (${reason})`}`,
    );
  };

function toBusMessage(
  topic: string,
  partition: number,
  m: {
    offset: string;
    key: Buffer | null;
    value: Buffer | null;
    headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
    timestamp: string;
  },
): BusMessage {
  return {
    topic,
    partition,
    offset: m.offset,
    key: m.key === null ? null : m.key.toString(),
    value: m.value,
    headers: headersToStrings(m.headers),
    timestamp: Number(m.timestamp),
  };
}

/** The bus over Kafka (kafkajs): acks from all in-sync replicas, per-key order, commit after handling. */
export function kafkaBus(opts: KafkaBusOptions): Bus {
  if (!Array.isArray(opts.brokers) || opts.brokers.length === 0)
    throw new TypeError('brokers: expected at least one');
  const kafka = new Kafka({
    brokers: opts.brokers,
    clientId: opts.clientId,
    logLevel: LEVELS[opts.logLevel ?? 'warn'],
    logCreator: quietLogCreator(opts.clientId, opts.logger),
    retry: { initialRetryTime: 300, maxRetryTime: 30_000, retries: opts.retries ?? 8 },
  });
  const busLogger = opts.logger ?? stderrLogger;
  // Not idempotent (kafkajs's idempotent producer does not work against every broker we test
  // with); one request in flight keeps per-key order across retries instead.
  const newProducer = () =>
    kafka.producer({
      idempotent: false,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });

  const producers = new Set<KafkaProducer>();
  const consumers = new Set<Consumer>();
  let deadLetterProducer: Promise<KafkaProducer> | undefined;
  let closed = false;

  const connectedProducer = async (): Promise<KafkaProducer> => {
    const producer = newProducer();
    producers.add(producer);
    try {
      await producer.connect();
    } catch (e) {
      producers.delete(producer);
      throw e;
    }
    return producer;
  };

  const sendDeadLetters = async (deadLetterTopic: string, letters: DeadLetter[]) => {
    deadLetterProducer ??= connectedProducer();
    const producer = await deadLetterProducer.catch((e) => {
      deadLetterProducer = undefined;
      throw e;
    });
    await producer.send({
      topic: deadLetterTopic,
      acks: -1,
      messages: letters.map(({ message, error }) => ({
        key: message.key,
        value: message.value,
        headers: deadLetterHeaders(message, error),
      })),
    });
  };

  const bus: Bus = {
    kind: 'kafka',

    async publisher(): Promise<Publisher> {
      if (closed) throw new Error('the bus is closed');
      const producer = await connectedProducer();
      let open = true;
      return {
        async publish(topic, messages) {
          assertOutgoing(topic, messages);
          if (!open) throw new Error('publisher is closed');
          if (messages.length === 0) return;
          await producer.send({
            topic,
            acks: -1,
            messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
          });
        },
        async close() {
          if (!open) return;
          open = false;
          producers.delete(producer);
          await producer.disconnect();
        },
      };
    },

    consumer<T>(options: ConsumerOptions<T>): Consumer {
      assertTopicName(options.deadLetterTopic, 'deadLetterTopic');
      if (!options.groupId) throw new TypeError('groupId: expected a non-empty string');
      if (!options.topics?.length) throw new TypeError('topics: expected at least one');
      for (const [i, t] of options.topics.entries()) assertTopicName(t, `topics[${i}]`);
      const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
      if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1)
        throw new TypeError('maxBatchSize: expected >= 1');
      const batchOptions = { ...options, onError: options.onError ?? batchErrorReporter(busLogger) };

      let kafkaConsumer: KafkaConsumer | undefined;
      let stopping: AbortController | undefined;
      let stopped: Promise<void> | undefined;

      const consumer: Consumer = {
        async start() {
          if (closed) throw new Error('the bus is closed');
          if (kafkaConsumer) throw new Error(`consumer ${options.groupId} already started`);
          const abort = new AbortController();
          stopping = abort;
          stopped = undefined;
          const c = kafka.consumer({
            groupId: options.groupId,
            sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
            rebalanceTimeout: opts.rebalanceTimeoutMs ?? 60_000,
            heartbeatInterval: opts.heartbeatIntervalMs ?? 3_000,
            maxWaitTimeInMs: opts.maxWaitTimeMs ?? 1_000,
          });
          kafkaConsumer = c;
          consumers.add(consumer);
          const heartbeatEveryMs = opts.heartbeatIntervalMs ?? 3_000;
          try {
            await c.connect();
            await c.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? false });
            await c.run({
              autoCommit: false,
              eachBatchAutoResolve: false,
              eachBatch: async ({
                batch,
                resolveOffset,
                heartbeat,
                commitOffsetsIfNecessary,
                isRunning,
                isStale,
              }) => {
                const all = batch.messages.map((m) => toBusMessage(batch.topic, batch.partition, m));
                for (const messages of chunks(all, maxBatchSize)) {
                  if (!isRunning() || isStale() || abort.signal.aborted) return;
                  // A long handler must not cost the group membership: heartbeat while it runs.
                  const beat = setInterval(() => void heartbeat().catch(() => {}), heartbeatEveryMs);
                  let outcome: 'done' | 'stopped';
                  try {
                    outcome = await processBatch({
                      options: batchOptions,
                      topic: batch.topic,
                      partition: batch.partition,
                      messages,
                      signal: abort.signal,
                      sendDeadLetters: (letters) => sendDeadLetters(options.deadLetterTopic, letters),
                      keepAlive: heartbeat,
                    });
                  } finally {
                    clearInterval(beat);
                  }
                  if (outcome === 'stopped') return;
                  const last = messages[messages.length - 1]!.offset;
                  resolveOffset(last);
                  // Explicit offsets: this commit also happens while the consumer is stopping,
                  // which kafkajs's consumer.commitOffsets would silently skip.
                  await commitOffsetsIfNecessary({
                    topics: [
                      {
                        topic: batch.topic,
                        partitions: [{ partition: batch.partition, offset: (BigInt(last) + 1n).toString() }],
                      },
                    ],
                  });
                  await heartbeat().catch(() => {});
                }
              },
            });
          } catch (e) {
            kafkaConsumer = undefined;
            consumers.delete(consumer);
            await c.disconnect().catch(() => {});
            throw e;
          }
        },

        stop() {
          if (!kafkaConsumer) return stopped ?? Promise.resolve();
          const c = kafkaConsumer;
          kafkaConsumer = undefined;
          stopping?.abort();
          // disconnect() waits for the batch in hand (it commits when its handler resolves), then leaves the group.
          stopped = c.disconnect().finally(() => consumers.delete(consumer));
          return stopped;
        },
      };
      return consumer;
    },

    async close() {
      closed = true;
      await Promise.allSettled([...consumers].map((c) => c.stop()));
      const all = [...producers];
      producers.clear();
      deadLetterProducer = undefined;
      await Promise.allSettled(all.map((p) => p.disconnect()));
    },
  };
  return bus;
}
