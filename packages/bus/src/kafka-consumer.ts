import type { Admin, EachBatchHandler, EachBatchPayload, Kafka, Consumer as KafkaConsumer } from 'kafkajs';
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
import {
  batchEnded,
  batchStarted,
  ConsumerStalledError,
  joined,
  newProgress,
  type PartitionBehind,
  type Progress,
  partitionsBehind,
  type WatchDeps,
  watch,
} from './progress-watchdog.ts';
import type { BusMessage, Consumer, ConsumerOptions, ConsumerState } from './types.ts';

export { ConsumerStalledError, type PartitionBehind, partitionsBehind } from './progress-watchdog.ts';

/** The group timeouts a Kafka consumer runs with (see README "Group timeouts" for why these values). */
export interface GroupTimeouts {
  sessionTimeoutMs: number;
  rebalanceTimeoutMs: number;
  heartbeatIntervalMs: number;
  maxWaitTimeMs: number;
  /**
   * The progress watchdog: a member that was assigned, has messages waiting in its partitions
   * and got no batch for this long (longer of this and the rebalance timeout while it rejoins)
   * is restarted.
   */
  progressTimeoutMs: number;
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
  // One admin client per consumer, connected at the first look and closed by stop().
  let admin: { client: Admin; connected: Promise<void> } | undefined;
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

  /** Hands one fetched batch to the handler in chunks, committing after each. */
  const consumeBatch = async (
    abort: AbortController,
    { batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }: EachBatchPayload,
  ): Promise<void> => {
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

  const eachBatch =
    (abort: AbortController, progress: Progress): EachBatchHandler =>
    async (payload) => {
      batchStarted(progress, Date.now());
      try {
        await consumeBatch(abort, payload);
      } finally {
        batchEnded(progress, payload.batch.topic, payload.batch.partition, Date.now());
      }
    };

  const connectedAdmin = async (): Promise<Admin> => {
    if (!admin) {
      // Few retries: a look that finds no broker is simply repeated at the next tick.
      const client = deps.kafka.admin({ retry: { retries: 1 } });
      admin = { client, connected: client.connect() };
    }
    const { client, connected } = admin;
    try {
      await connected;
    } catch (e) {
      admin = undefined;
      throw e;
    }
    return client;
  };

  /** Asks the brokers which of `assignment`'s partitions have messages past the group's committed offsets. */
  const lookBehind = async (progress: Progress): Promise<PartitionBehind[]> => {
    const assignment = progress.assignment ?? {};
    const topics = Object.keys(assignment).filter((t) => (assignment[t]?.length ?? 0) > 0);
    if (topics.length === 0) return [];
    const client = await connectedAdmin();
    const [ends, committed] = await Promise.all([
      Promise.all(topics.map(async (t) => [t, await client.fetchTopicOffsets(t)] as const)),
      client.fetchOffsets({ groupId, topics }),
    ]);
    return partitionsBehind(
      assignment,
      Object.fromEntries(ends),
      Object.fromEntries(committed.map((c) => [c.topic, c.partitions])),
      options.fromBeginning ?? false,
      progress.baseline,
    );
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
    const progress = newProgress(Date.now());
    let stalled = false;
    let stall: (e: ConsumerStalledError) => void = () => {};
    const crashed = new Promise<unknown>((resolve) => {
      stall = (e) => {
        stalled = true;
        resolve(e);
      };
      c.on(c.events.CRASH, (e) => {
        settleJoin();
        resolve(e.payload.error);
      });
      run.abort.signal.addEventListener('abort', () => resolve(undefined), { once: true });
    });
    c.on(c.events.GROUP_JOIN, (e) => {
      settleJoin();
      // A stalled consumer still finishing its joins while it disconnects no longer speaks for this one.
      if (progress.ended) return;
      const partitions = Object.values(e.payload.memberAssignment).reduce((n, p) => n + p.length, 0);
      setState({ phase: 'assigned', partitions });
      joined(progress, e.payload.memberAssignment, Date.now());
      onAssigned();
    });
    c.on(c.events.REBALANCING, () => {
      if (progress.ended) return;
      newJoin();
      setState({ phase: 'joining' });
    });
    setState({ phase: 'joining', ...(attempt > 0 ? { attempt } : {}) });
    const watchDeps: WatchDeps = {
      groupId,
      timeouts,
      logger: deps.logger,
      phase: () => state.phase,
      lookBehind,
      stall: (reason, partitions) => {
        setState({ phase: 'stalled', reason, partitions });
        stall(new ConsumerStalledError(reason));
      },
    };
    let looking = false;
    const watchdog = setInterval(
      () => {
        if (looking) return;
        looking = true;
        void watch(watchDeps, progress, run.abort.signal).finally(() => {
          looking = false;
        });
      },
      Math.max(200, Math.min(5000, Math.round(timeouts.progressTimeoutMs / 3))),
    );
    watchdog.unref();
    try {
      await c.connect();
      await c.subscribe({ topics: options.topics, fromBeginning: options.fromBeginning ?? false });
      // Resolves after the join, or after a failed join was reported as a crash.
      // kafkajs never hands out two batches of one partition at once, whatever the concurrency.
      await c.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: concurrency,
        eachBatch: eachBatch(run.abort, progress),
      });
      return await crashed;
    } catch (e) {
      settleJoin();
      return run.abort.signal.aborted ? undefined : e;
    } finally {
      progress.ended = true;
      clearInterval(watchdog);
      // disconnect() waits for the batch in hand (committed when its handler resolves), then sends LeaveGroup.
      const left = c.disconnect().catch(() => {});
      // A stalled kafkajs consumer may be deep in its own join retries, which disconnect() waits
      // out: give it a session timeout, then start the fresh one (the old member leaves when done).
      if (stalled) await Promise.race([left, pause(timeouts.sessionTimeoutMs, new AbortController().signal)]);
      else await left;
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
        const closing = admin;
        admin = undefined;
        if (closing) await closing.connected.then(() => closing.client.disconnect()).catch(() => {});
        setState({ phase: 'stopped' });
        deps.track(consumer, false);
      })();
      return stopped;
    },
  };
  return consumer;
}
