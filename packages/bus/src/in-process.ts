import { Store } from './in-process-store.ts';
import { type BusLogger, stderrLogger } from './log.ts';
import { assertOutgoing, assertTopicName, deadLetterHeaders } from './messages.ts';
import {
  backoffMs,
  batchErrorReporter,
  DEFAULT_MAX_BATCH_SIZE,
  notify,
  pause,
  processBatch,
} from './process-batch.ts';
import type { Bus, Consumer, ConsumerOptions, ConsumerState, Publisher } from './types.ts';

export interface InProcessBusOptions {
  /**
   * Where topics and committed offsets live, as append-only JSON lines, so a restart loses
   * nothing and re-handles nothing already committed. Without it everything is in memory.
   */
  dataDir?: string;
  /** Clock for message timestamps (default Date.now). */
  now?: () => number;
  /** Where consumer retries are reported (default: JSON lines on stderr). */
  logger?: BusLogger;
}

/**
 * The bus contract inside one process, for `npm start` without Kafka: each topic is one
 * append-only log (one partition, so per-key order is total order), consumer groups keep
 * committed offsets, malformed messages go to the dead-letter topic, a failed batch is redelivered.
 */
export function inProcessBus(opts: InProcessBusOptions = {}): Bus {
  const store = new Store(opts.dataDir);
  const now = opts.now ?? Date.now;
  const consumers = new Set<Consumer>();
  let closed = false;
  const assertOpen = () => {
    if (closed) throw new Error('the bus is closed');
  };

  return {
    kind: 'in-process',

    async publisher(): Promise<Publisher> {
      assertOpen();
      let open = true;
      return {
        async publish(topic, messages) {
          assertOutgoing(topic, messages);
          if (!open) throw new Error('publisher is closed');
          assertOpen();
          if (messages.length === 0) return;
          store.log(topic).append(
            messages.map((m) => ({
              key: m.key,
              value: Buffer.isBuffer(m.value) ? m.value : Buffer.from(m.value),
              headers: { ...m.headers },
            })),
            now(),
          );
        },
        async close() {
          open = false;
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
      // Accepted for the contract's sake (one partition per topic here), but checked the same way.
      const concurrency = options.partitionsConsumedConcurrently ?? 1;
      if (!Number.isInteger(concurrency) || concurrency < 1)
        throw new TypeError('partitionsConsumedConcurrently: expected an integer >= 1');
      const { groupId } = options;
      const onError = options.onError ?? batchErrorReporter(opts.logger ?? stderrLogger);
      const batchOptions = { ...options, onError };

      let running: { abort: AbortController; loops: Promise<void>[] } | undefined;

      const consumeTopic = async (topic: string, member: object, signal: AbortSignal) => {
        if (!(await store.acquire(groupId, topic, member, signal))) return;
        try {
          const log = store.log(topic);
          let position = store.committed(groupId, topic) ?? (options.fromBeginning ? 0 : log.messages.length);
          let failures = 0;
          const reportLag = () =>
            notify(() => options.onLag?.({ topic, partition: 0, messages: log.messages.length - position }));
          reportLag();
          while (!signal.aborted) {
            if (position >= log.messages.length) {
              await log.waitBeyond(position, signal);
              continue;
            }
            const messages = log.messages.slice(position, position + maxBatchSize);
            try {
              const outcome = await processBatch({
                options: batchOptions,
                topic,
                partition: 0,
                messages,
                signal,
                sendDeadLetters: async (letters) => {
                  store.log(options.deadLetterTopic).append(
                    letters.map(({ message, error }) => ({
                      key: message.key,
                      value: message.value,
                      headers: deadLetterHeaders(message, error),
                    })),
                    now(),
                  );
                },
              });
              if (outcome === 'stopped') return;
              position += messages.length;
              store.commit(groupId, topic, position);
              reportLag();
              failures = 0;
            } catch (error) {
              // Only the commit's file write can land here (processBatch retries everything else):
              // the batch stays uncommitted and is offered again.
              failures++;
              const retryInMs = backoffMs(failures, options.retryBackoff);
              onError(error, {
                groupId,
                topic,
                partition: 0,
                firstOffset: messages[0]!.offset,
                lastOffset: messages[messages.length - 1]!.offset,
                attempt: failures,
                retryInMs,
              });
              await pause(retryInMs, signal);
            }
          }
        } finally {
          store.release(groupId, topic, member);
        }
      };

      let state: ConsumerState = { phase: 'stopped', groupId, since: Date.now() };
      const setState = (phase: ConsumerState['phase']) => {
        state = {
          phase,
          groupId,
          since: Date.now(),
          ...(phase === 'assigned' ? { partitions: options.topics.length } : {}),
        };
        try {
          options.onStateChange?.(state);
        } catch {
          // A listener's bug must not stop the consumer.
        }
      };
      const consumer: Consumer = {
        async start() {
          assertOpen();
          if (running) throw new Error(`consumer ${groupId} already started`);
          const abort = new AbortController();
          const member = {};
          running = { abort, loops: options.topics.map((t) => consumeTopic(t, member, abort.signal)) };
          consumers.add(consumer);
          // No group to join in-process: assigned at once.
          setState('assigned');
        },
        state: () => state,
        async stop() {
          if (!running) return;
          const { abort, loops } = running;
          running = undefined;
          abort.abort();
          // Each loop finishes its batch in hand (and commits it) before it returns.
          await Promise.allSettled(loops);
          consumers.delete(consumer);
          setState('stopped');
        },
      };
      return consumer;
    },

    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...consumers].map((c) => c.stop()));
      store.close();
    },
  };
}
