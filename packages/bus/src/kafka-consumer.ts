import type { Kafka, Consumer as KafkaConsumer } from 'kafkajs';
import type { BusLogger } from './log.ts';
import { assertTopicName, headersToStrings } from './messages.ts';
import {
  backoffMs,
  batchErrorReporter,
  chunks,
  DEFAULT_MAX_BATCH_SIZE,
  type DeadLetter,
  notify,
  pause,
  processBatch,
} from './process-batch.ts';
import type { BusMessage, Consumer, ConsumerOptions, ConsumerState } from './types.ts';

/** The group timeouts a Kafka consumer runs with (see README "Group timeouts" for why these values). */
export interface GroupTimeouts {
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitTimeMs: number;
}

export interface KafkaConsumerDeps {
  kafka: Kafka;
  timeouts: GroupTimeouts;
  logger: BusLogger;
  sendDeadLetters: (deadLetterTopic: string, letters: DeadLetter[]) => Promise<void>;
  isClosed: () => boolean;
  /** Told when the consumer starts and when it has stopped (the bus closes what is open). */
  track: (consumer: Consumer, open: boolean) => void;
}

const JOIN_RETRY = { initialMs: 500, maxMs: 30_000 };

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

const reasonOf = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/**
 * A consumer in a kafkajs group. kafkajs's `run()` awaits the group join, which after a member
 * was killed lasts until that member's session times out; so the join runs in the background
 * and its progress is `state()`. kafkajs's own restart-on-crash is off: one loop here restarts
 * every crash (retriable or not) with backoff, so a consumer never ends while not stopped.
 */
export function kafkaConsumer<T>(deps: KafkaConsumerDeps, options: ConsumerOptions<T>): Consumer {
  assertTopicName(options.deadLetterTopic, 'deadLetterTopic');
  if (!options.groupId) throw new TypeError('groupId: expected a non-empty string');
  if (!options.topics?.length) throw new TypeError('topics: expected at least one');
  for (const [i, t] of options.topics.entries()) assertTopicName(t, `topics[${i}]`);
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new TypeError('maxBatchSize: expected >= 1');
  const concurrency = options.partitionsConsumedConcurrently ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new TypeError('partitionsConsumedConcurrently: expected an integer >= 1');
  const batchOptions = { ...options, onError: options.onError ?? batchErrorReporter(deps.logger) };
  const { timeouts } = deps;
  const groupId = options.groupId;

  let state: ConsumerState = { phase: 'stopped', groupId, since: Date.now() };
  const setState = (next: Omit<ConsumerState, 'groupId' | 'since'>) => {
    state = { ...next, groupId, since: Date.now() };
    try {
      options.onStateChange?.(state);
    } catch {
      // A listener's bug must not stop the consumer.
    }
  };

  interface Run {
    abort: AbortController;
    loop: Promise<void>;
    current?: KafkaConsumer;
  }
  let active: Run | undefined;
  let stopped: Promise<void> | undefined;
  /** Settles when the join in flight ends (joined or crashed); stop() waits for it, bounded. */
  let joinSettled: Promise<void> = Promise.resolve();
  let settleJoin = () => {};
  const newJoin = () => {
    joinSettled = new Promise<void>((r) => {
      settleJoin = r;
    });
  };

  const eachBatch =
    (
      abort: AbortController,
    ): Parameters<KafkaConsumer['run']>[0] extends infer R
      ? R extends { eachBatch?: infer B }
        ? NonNullable<B>
        : never
      : never =>
    async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
      const all = batch.messages.map((m) => toBusMessage(batch.topic, batch.partition, m));
      for (const messages of chunks(all, maxBatchSize)) {
        if (!isRunning() || isStale() || abort.signal.aborted) return;
        // A long handler must not cost the group membership: heartbeat while it runs.
        const beat = setInterval(() => void heartbeat().catch(() => {}), timeouts.heartbeatIntervalMs);
        let outcome: 'done' | 'stopped';
        try {
          outcome = await processBatch({
            options: batchOptions,
            topic: batch.topic,
            partition: batch.partition,
            messages,
            signal: abort.signal,
            sendDeadLetters: (letters) => deps.sendDeadLetters(options.deadLetterTopic, letters),
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
        const behind = BigInt(batch.highWatermark) - (BigInt(last) + 1n);
        notify(() =>
          options.onLag?.({
            topic: batch.topic,
            partition: batch.partition,
            messages: Number(behind > 0n ? behind : 0n),
          }),
        );
        await heartbeat().catch(() => {});
      }
    };

  /** One kafkajs consumer from connect to crash; resolves with the crash's error, or undefined when stopped. */
  const runOnce = async (run: Run, attempt: number, onAssigned: () => void): Promise<unknown> => {
    const c = deps.kafka.consumer({
      groupId,
      sessionTimeout: timeouts.sessionTimeoutMs,
      rebalanceTimeout: timeouts.rebalanceTimeoutMs,
      heartbeatInterval: timeouts.heartbeatIntervalMs,
      maxWaitTimeInMs: timeouts.maxWaitTimeMs,
      retry: { restartOnFailure: async () => false },
    });
    run.current = c;
    newJoin();
    const crashed = new Promise<unknown>((resolve) => {
      c.on(c.events.CRASH, (e) => {
        settleJoin();
        resolve(e.payload.error);
      });
      run.abort.signal.addEventListener('abort', () => resolve(undefined), { once: true });
    });
    c.on(c.events.GROUP_JOIN, (e) => {
      settleJoin();
      const partitions = Object.values(e.payload.memberAssignment).reduce((n, p) => n + p.length, 0);
      setState({ phase: 'assigned', partitions });
      onAssigned();
    });
    c.on(c.events.REBALANCING, () => {
      newJoin();
      setState({ phase: 'joining' });
    });
    setState({ phase: 'joining', ...(attempt > 0 ? { attempt } : {}) });
    try {
      await c.connect();
      await c.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? false });
      // Resolves after the join, or after a failed join was reported as a crash.
      // kafkajs never hands out two batches of one partition at once, whatever the concurrency.
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: concurrency,
        eachBatch: eachBatch(run.abort),
      });
      return await crashed;
    } catch (e) {
      settleJoin();
      return run.abort.signal.aborted ? undefined : e;
    } finally {
      // disconnect() waits for the batch in hand (committed when its handler resolves), then sends LeaveGroup.
      await c.disconnect().catch(() => {});
    }
  };

  const consumer: Consumer = {
    async start() {
      if (deps.isClosed()) throw new Error('the bus is closed');
      if (active) throw new Error(`consumer ${groupId} already started`);
      const abort = new AbortController();
      let assigned!: () => void;
      const firstAssigned = new Promise<void>((r) => {
        assigned = r;
      });
      const run: Run = { abort, loop: Promise.resolve() };
      active = run;
      stopped = undefined;
      deps.track(consumer, true);
      run.loop = (async () => {
        let failures = 0;
        while (!abort.signal.aborted) {
          const error = await runOnce(run, failures, () => {
            failures = 0;
            assigned();
          });
          if (abort.signal.aborted) break;
          failures++;
          const retryInMs = backoffMs(failures, JOIN_RETRY);
          setState({ phase: 'retrying', attempt: failures, reason: reasonOf(error), retryInMs });
          deps.logger.warn(
            { component: 'bus', groupId, attempt: failures, retryInMs, reason: reasonOf(error) },
            `consumer ${groupId} failed; joining again in ${retryInMs} ms`,
          );
          await pause(retryInMs, abort.signal);
        }
      })();
      await Promise.race([firstAssigned, run.loop]);
    },

    state: () => state,

    stop() {
      if (!active) return stopped ?? Promise.resolve();
      const run = active;
      active = undefined;
      const inJoin = state.phase === 'joining';
      stopped = (async () => {
        // kafkajs sends LeaveGroup only once joined: stopping mid-join would leave a member the
        // coordinator waits for until its session times out, so the join in flight may finish first.
        if (inJoin) {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            joinSettled,
            new Promise<void>((r) => {
              timer = setTimeout(r, timeouts.sessionTimeoutMs + 1000);
            }),
          ]);
          clearTimeout(timer);
          // GROUP_JOIN is emitted just before kafkajs marks its runner running (which is what
          // makes disconnect() leave): let that happen first.
          await new Promise((r) => setImmediate(r));
        }
        run.abort.abort();
        await run.current?.disconnect().catch(() => {});
        await run.loop;
        setState({ phase: 'stopped' });
        deps.track(consumer, false);
      })();
      return stopped;
    },
  };
  return consumer;
}
