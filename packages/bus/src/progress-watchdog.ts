/**
 * The progress watchdog of a Kafka consumer (README "Group timeouts"): kafkajs can stay a member
 * of the group and stop fetching some or all of its partitions (after a partition leader moved,
 * each of its per-broker fetchers rejoined the group at once and the joins undid each other). A
 * partition with messages waiting that got no batch for `progressTimeoutMs` (counting only time
 * with no batch in hand) means stalled: the consumer says so and its rejoin loop starts a fresh one.
 */
import type { BusLogger } from './log.ts';
import type { ConsumerState } from './types.ts';

/** Why the watchdog restarted a kafkajs consumer (the rejoin loop's `reason`). */
export class ConsumerStalledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConsumerStalledError';
  }
}

/** A partition of this member with messages it has not handled. */
export interface PartitionBehind {
  topic: string;
  partition: number;
  messages: number;
}

/**
 * Which assigned partitions have messages past the group's committed offset. A partition with
 * no committed offset starts at the low watermark (fromBeginning) or at the end it had when
 * first looked at (`baseline`, kept across calls), so a group reading only new messages is not
 * behind for what came before it.
 */
export function partitionsBehind(
  assignment: Record<string, number[]>,
  ends: Record<string, { partition: number; high: string; low: string }[]>,
  committed: Record<string, { partition: number; offset: string }[]>,
  fromBeginning: boolean,
  baseline: Map<string, bigint>,
): PartitionBehind[] {
  const out: PartitionBehind[] = [];
  for (const [topic, partitions] of Object.entries(assignment)) {
    for (const partition of partitions) {
      const end = ends[topic]?.find((e) => e.partition === partition);
      if (!end) continue;
      const high = BigInt(end.high);
      const done = committed[topic]?.find((c) => c.partition === partition)?.offset ?? '-1';
      let position: bigint;
      if (BigInt(done) >= 0n) position = BigInt(done);
      else if (fromBeginning) position = BigInt(end.low);
      else {
        const key = `${topic}\u0000${partition}`;
        if (!baseline.has(key)) baseline.set(key, high);
        position = baseline.get(key)!;
      }
      if (high > position) out.push({ topic, partition, messages: Number(high - position) });
    }
  }
  return out;
}

/** What the watchdog knows of one kafkajs consumer. */
export interface Progress {
  /** Its partitions (topic to partitions) from its last join; unset until it joined. */
  assignment?: Record<string, number[]>;
  /**
   * Batches in hand. While one is, the watchdog's clock stops: kafkajs hands out the next
   * batches only once those of a fetch are handled, so a slow or retrying handler holds back
   * the other partitions too, and that is not a stalled fetch.
   */
  busy: number;
  /** Time spent with no batch in hand since the first join, up to `idleSince`. */
  idleMs: number;
  /** When the last batch ended (or the first join came), counted while `busy` is 0. */
  idleSince: number;
  /** Each partition's `idleMs` when its last batch ended; absent: none yet (0). */
  partitionMark: Map<string, number>;
  /** `idleMs` at the last look the brokers did not answer: every partition's clock starts again there. */
  floor: number;
  /** Ends between two looks of the same run (see partitionsBehind). */
  baseline: Map<string, bigint>;
  /** Set once the kafkajs consumer crashed, stalled or is stopping: a late look must not touch the state. */
  ended: boolean;
}

export const newProgress = (now: number): Progress => ({
  busy: 0,
  idleMs: 0,
  idleSince: now,
  partitionMark: new Map(),
  floor: 0,
  baseline: new Map(),
  ended: false,
});

const partitionKey = (topic: string, partition: number) => `${topic}\u0000${partition}`;

/** The watchdog's clock: time with no batch in hand since the first join. */
const idleNow = (p: Progress, now: number) => p.idleMs + (p.busy === 0 ? Math.max(0, now - p.idleSince) : 0);

/** A batch of the consumer's was handed to its handler. */
export function batchStarted(p: Progress, now: number): void {
  if (p.busy === 0) p.idleMs = idleNow(p, now);
  p.busy++;
}

/** That batch's handler ended (done, stopped or thrown). */
export function batchEnded(p: Progress, topic: string, partition: number, now: number): void {
  p.busy--;
  if (p.busy === 0) p.idleSince = now;
  p.partitionMark.set(partitionKey(topic, partition), p.idleMs);
}

/** The consumer joined with `assignment`. */
export function joined(p: Progress, assignment: Record<string, number[]>, now: number): void {
  // Only the first join starts the clock: a member caught in a storm of rejoins must still
  // look stalled when none of them brings a batch.
  if (!p.assignment) p.idleSince = now;
  // A partition taken up now (a takeover) starts its clock now, not at the first join.
  const before = p.assignment ?? {};
  for (const [topic, ps] of Object.entries(assignment))
    for (const partition of ps)
      if (!before[topic]?.includes(partition))
        p.partitionMark.set(partitionKey(topic, partition), idleNow(p, now));
  p.assignment = assignment;
}

export interface WatchDeps {
  groupId: string;
  timeouts: { progressTimeoutMs: number; rebalanceTimeoutMs: number };
  logger: BusLogger;
  phase: () => ConsumerState['phase'];
  /** Asks the brokers which of the assigned partitions have messages past the committed offsets. */
  lookBehind: (p: Progress) => Promise<PartitionBehind[]>;
  /** Called once, when the consumer is taken for stalled. */
  stall: (reason: string, partitions: number) => void;
}

const reasonOf = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** One look of the watchdog; calls `deps.stall` when a partition with messages waiting got no batch for too long. */
export async function watch(deps: WatchDeps, progress: Progress, signal: AbortSignal): Promise<void> {
  const { timeouts, groupId } = deps;
  const assignment = progress.assignment;
  if (!assignment || progress.busy > 0 || progress.ended || signal.aborted) return;
  const phase = deps.phase();
  if (phase !== 'assigned' && phase !== 'joining') return;
  // A rejoin legitimately waits for the other members to finish their batches.
  const limit =
    phase === 'joining'
      ? Math.max(timeouts.progressTimeoutMs, timeouts.rebalanceTimeoutMs)
      : timeouts.progressTimeoutMs;
  const quietMs = (topic: string, partition: number, now: number) =>
    idleNow(progress, now) -
    Math.max(progress.floor, progress.partitionMark.get(partitionKey(topic, partition)) ?? 0);
  const now = Date.now();
  const quiet = Object.entries(assignment).some(([t, ps]) => ps.some((p) => quietMs(t, p, now) >= limit));
  if (!quiet) return;
  let behind: PartitionBehind[];
  try {
    behind = await deps.lookBehind(progress);
  } catch (e) {
    // No answer (a broker outage): no consumer can fetch then either. Once the brokers answer
    // again, kafkajs gets a whole timeout to resume by itself before it is taken for stalled.
    progress.floor = idleNow(progress, Date.now());
    deps.logger.debug?.(
      { component: 'bus', groupId, reason: reasonOf(e) },
      `consumer ${groupId}: progress check failed`,
    );
    return;
  }
  if (progress.busy > 0 || progress.ended || signal.aborted) return;
  const later = Date.now();
  const stuck = behind.filter((b) => quietMs(b.topic, b.partition, later) >= limit);
  if (stuck.length === 0) return;
  progress.ended = true;
  const messages = stuck.reduce((n, b) => n + b.messages, 0);
  const longest = Math.max(...stuck.map((b) => quietMs(b.topic, b.partition, later)));
  const reason =
    `not progressing: ${messages} message(s) waiting in ${stuck.length} partition(s), ` +
    `no batch for ${Math.round(longest / 1000)} s`;
  deps.logger.warn(
    { component: 'bus', groupId, partitionsBehind: stuck.length, messagesBehind: messages, quietMs: longest },
    `consumer ${groupId} ${reason}; restarting it`,
  );
  deps.stall(reason, stuck.length);
}
