import { Kafka, type Producer as KafkaProducer, type logCreator, logLevel, Partitioners } from 'kafkajs';
import { kafkaConsumer } from './kafka-consumer.ts';
import { shareGroupJoins } from './kafkajs-join.ts';
import { type BusLogger, stderrLogger } from './log.ts';
import { assertOutgoing, deadLetterHeaders } from './messages.ts';
import type { DeadLetter } from './process-batch.ts';
import { PRODUCER_RETRY, type SendRetry, sendWhole } from './send-whole.ts';
import type { Bus, Consumer, ConsumerOptions, Publisher } from './types.ts';

/**
 * Group timeouts (README "Group timeouts"): a member killed without leaving holds its partitions
 * for the session timeout, so it is short; heartbeats come three times per session; a rebalance
 * waits for live members to finish the batch in hand (they heartbeat while handling).
 */
export const DEFAULT_GROUP_TIMEOUTS = {
  sessionTimeoutMs: 10_000,
  rebalanceTimeoutMs: 30_000,
  heartbeatIntervalMs: 3_000,
  // A fetch that finds nothing waits this long. A real broker answers as soon as a message arrives,
  // but librdkafka's mock cluster (tests, benchmarks) answers only when the wait is over: 1 s there
  // put up to 1 s on every message's way (measured: 445-906 ms publish to handled; 44-90 ms at
  // 100). 50 ms costs an idle consumer ~20 fetches a second.
  maxWaitTimeMs: 50,
  // The progress watchdog (README "Group timeouts"): longer than a session timeout, so a
  // takeover after a dead member is not taken for a stall; short enough that a stalled member
  // costs seconds, not an operator's restart.
  progressTimeoutMs: 15_000,
} as const;

export type BusLogLevel = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  /** kafkajs log level (default 'warn'); lines never include message values. */
  logLevel?: BusLogLevel;
  /** Where kafkajs's lines and consumer retries go (default: JSON lines on stderr). */
  logger?: BusLogger;
  /** Consumer group session timeout (default 10 000 ms): how long a killed member holds its partitions. */
  sessionTimeoutMs?: number;
  /** How long a rebalance waits for members to rejoin (default 30 000 ms). */
  rebalanceTimeoutMs?: number;
  /** Default 3 000 ms: a third of the session timeout. */
  heartbeatIntervalMs?: number;
  /**
   * Longest a fetch waits for new messages (default 50 ms). stop() waits for the fetch in
   * flight, so this bounds how long a stop takes on an idle topic.
   */
  maxWaitTimeMs?: number;
  /**
   * The progress watchdog (default 15 000 ms): a consumer that is assigned, has messages waiting
   * in its partitions and got no batch for this long (during a rejoin: at least the rebalance
   * timeout) is reported `stalled` and restarted.
   */
  progressTimeoutMs?: number;
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

/** The bus over Kafka (kafkajs): acks from all in-sync replicas, per-key order, commit after handling. */
export function kafkaBus(opts: KafkaBusOptions): Bus {
  if (!Array.isArray(opts.brokers) || opts.brokers.length === 0)
    throw new TypeError('brokers: expected at least one');
  // Before any consumer exists: see kafkajs-join.ts (several fetchers rejoining at once).
  shareGroupJoins();
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
      // Retried here, whole (send-whole.ts): kafkajs's own retry of a send can drop messages.
      retry: PRODUCER_RETRY,
    });
  const sendRetry: SendRetry = { retries: opts.retries ?? 8, initialMs: 300, maxMs: 30_000 };

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
    await sendWhole(
      producer,
      {
        topic: deadLetterTopic,
        acks: -1,
        messages: letters.map(({ message, error }) => ({
          key: message.key,
          value: message.value,
          headers: deadLetterHeaders(message, error),
        })),
      },
      sendRetry,
    );
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
          await sendWhole(
            producer,
            {
              topic,
              acks: -1,
              messages: messages.map((m) => ({ key: m.key, value: m.value, headers: m.headers })),
            },
            sendRetry,
          );
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
      return kafkaConsumer(
        {
          kafka,
          timeouts: {
            sessionTimeoutMs: opts.sessionTimeoutMs ?? DEFAULT_GROUP_TIMEOUTS.sessionTimeoutMs,
            rebalanceTimeoutMs: opts.rebalanceTimeoutMs ?? DEFAULT_GROUP_TIMEOUTS.rebalanceTimeoutMs,
            heartbeatIntervalMs: opts.heartbeatIntervalMs ?? DEFAULT_GROUP_TIMEOUTS.heartbeatIntervalMs,
            maxWaitTimeMs: opts.maxWaitTimeMs ?? DEFAULT_GROUP_TIMEOUTS.maxWaitTimeMs,
            progressTimeoutMs: opts.progressTimeoutMs ?? DEFAULT_GROUP_TIMEOUTS.progressTimeoutMs,
          },
          logger: busLogger,
          sendDeadLetters,
          isClosed: () => closed,
          track: (c, open) => (open ? consumers.add(c) : consumers.delete(c)),
        },
        options,
      );
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
