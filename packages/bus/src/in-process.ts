import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { type BusLogger, stderrLogger } from './log.ts';
import { assertOutgoing, assertTopicName, deadLetterHeaders } from './messages.ts';
import {
  backoffMs,
  batchErrorReporter,
  DEFAULT_MAX_BATCH_SIZE,
  pause,
  processBatch,
} from './process-batch.ts';
import type { Bus, BusMessage, Consumer, ConsumerOptions, ConsumerState, Publisher } from './types.ts';

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

/** One line of a topic file: offset, key, base64 value, headers, timestamp. */
interface StoredLine {
  o: number;
  k: string | null;
  v: string | null;
  h: Record<string, string>;
  t: number;
}

interface NewMessage {
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
}

/**
 * Reads a JSON-lines file. A last line without its newline is a write torn by a crash: it was
 * never acknowledged, so it is cut off (and the file truncated) rather than failing the start.
 */
function readLines(path: string): unknown[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, 'utf8');
  const end = text.lastIndexOf('\n') + 1;
  if (end < text.length) {
    const fd = openSync(path, 'r+');
    ftruncateSync(fd, Buffer.byteLength(text.slice(0, end)));
    closeSync(fd);
  }
  return text
    .slice(0, end)
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`in-process bus: ${path} line ${i + 1} is not valid JSON`);
      }
    });
}

class TopicLog {
  readonly messages: BusMessage[] = [];
  private readonly wakeups = new Set<() => void>();

  constructor(
    readonly topic: string,
    private readonly fd: number | undefined,
  ) {}

  load(lines: unknown[], path: string): void {
    for (const raw of lines) {
      const line = raw as StoredLine;
      if (line.o !== this.messages.length) {
        throw new Error(
          `in-process bus: ${path} has offset ${line.o} where ${this.messages.length} was expected`,
        );
      }
      this.messages.push({
        topic: this.topic,
        partition: 0,
        offset: String(line.o),
        key: line.k,
        value: line.v === null ? null : Buffer.from(line.v, 'base64'),
        headers: line.h,
        timestamp: line.t,
      });
    }
  }

  /** Written to the file (one write for the whole call) before anyone can read it. */
  append(entries: NewMessage[], timestamp: number): void {
    const base = this.messages.length;
    const stored = entries.map((e, i) => ({
      topic: this.topic,
      partition: 0,
      offset: String(base + i),
      key: e.key,
      value: e.value,
      headers: e.headers,
      timestamp,
    }));
    if (this.fd !== undefined) {
      const text = stored
        .map((m) =>
          JSON.stringify({
            o: Number(m.offset),
            k: m.key,
            v: m.value?.toString('base64') ?? null,
            h: m.headers,
            t: m.timestamp,
          } satisfies StoredLine),
        )
        .join('\n');
      writeSync(this.fd, `${text}\n`);
    }
    this.messages.push(...stored);
    for (const wake of [...this.wakeups]) wake();
  }

  /** Resolves when a message beyond `position` exists or `signal` aborts. */
  waitBeyond(position: number, signal: AbortSignal): Promise<void> {
    if (position < this.messages.length || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        this.wakeups.delete(wake);
        signal.removeEventListener('abort', wake);
        resolve();
      };
      this.wakeups.add(wake);
      signal.addEventListener('abort', wake, { once: true });
    });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
  }
}

/** Topics, committed offsets and group membership of one in-process bus. */
class Store {
  private readonly topics = new Map<string, TopicLog>();
  private readonly offsets = new Map<string, number>();
  private offsetsFd: number | undefined;
  /** Which consumer owns a (group, topic), like a Kafka partition assignment; others wait their turn. */
  private readonly owners = new Map<string, object>();
  private readonly ownerWaiters = new Map<string, Set<() => void>>();
  private readonly lockPath: string | undefined;

  constructor(private readonly dataDir: string | undefined) {
    if (!dataDir) return;
    mkdirSync(join(dataDir, 'topics'), { recursive: true });
    this.lockPath = join(dataDir, 'bus.lock');
    this.lock(this.lockPath);
    try {
      for (const name of readdirSync(join(dataDir, 'topics'))) {
        if (name.endsWith('.jsonl')) this.log(name.slice(0, -'.jsonl'.length));
      }
      const offsetsPath = join(dataDir, 'offsets.jsonl');
      for (const raw of readLines(offsetsPath)) {
        const { g, t, o } = raw as { g: string; t: string; o: number };
        this.offsets.set(this.offsetKey(g, t), o);
      }
      // Every commit appends a line; start each run from one line per (group, topic).
      const compacted = [...this.offsets].map(([key, o]) => {
        const [g, t] = key.split('\u0000');
        return `${JSON.stringify({ g, t, p: 0, o })}\n`;
      });
      writeFileSync(`${offsetsPath}.tmp`, compacted.join(''));
      renameSync(`${offsetsPath}.tmp`, offsetsPath);
      this.offsetsFd = openSync(offsetsPath, 'a');
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Two buses appending to the same files would corrupt them: one owner at a time. */
  private lock(path: string): void {
    try {
      writeFileSync(path, String(process.pid), { flag: 'wx' });
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(readFileSync(path, 'utf8'));
    let alive = false;
    if (pid === process.pid) alive = true;
    else if (pid > 0) {
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (e) {
        alive = (e as NodeJS.ErrnoException).code === 'EPERM';
      }
    }
    if (alive) throw new Error(`in-process bus: ${this.dataDir} is in use by process ${pid} (${path})`);
    writeFileSync(path, String(process.pid));
  }

  private offsetKey(group: string, topic: string): string {
    return `${group}\u0000${topic}`;
  }

  log(topic: string): TopicLog {
    let log = this.topics.get(topic);
    if (!log) {
      if (this.dataDir) {
        const path = join(this.dataDir, 'topics', `${topic}.jsonl`);
        const lines = readLines(path);
        log = new TopicLog(topic, openSync(path, 'a'));
        log.load(lines, path);
      } else {
        log = new TopicLog(topic, undefined);
      }
      this.topics.set(topic, log);
    }
    return log;
  }

  committed(group: string, topic: string): number | undefined {
    return this.offsets.get(this.offsetKey(group, topic));
  }

  commit(group: string, topic: string, next: number): void {
    if (this.offsetsFd !== undefined) {
      writeSync(this.offsetsFd, `${JSON.stringify({ g: group, t: topic, p: 0, o: next })}\n`);
    }
    this.offsets.set(this.offsetKey(group, topic), next);
  }

  /** Resolves true once `owner` owns (group, topic), false if `signal` aborted first. */
  async acquire(group: string, topic: string, owner: object, signal: AbortSignal): Promise<boolean> {
    const key = this.offsetKey(group, topic);
    while (!signal.aborted) {
      if (!this.owners.has(key)) {
        this.owners.set(key, owner);
        return true;
      }
      await new Promise<void>((resolve) => {
        const waiters = this.ownerWaiters.get(key) ?? new Set();
        this.ownerWaiters.set(key, waiters);
        const wake = () => {
          waiters.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
        waiters.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
    return false;
  }

  release(group: string, topic: string, owner: object): void {
    const key = this.offsetKey(group, topic);
    if (this.owners.get(key) !== owner) return;
    this.owners.delete(key);
    for (const wake of [...(this.ownerWaiters.get(key) ?? [])]) wake();
  }

  close(): void {
    for (const log of this.topics.values()) log.close();
    this.topics.clear();
    if (this.offsetsFd !== undefined) closeSync(this.offsetsFd);
    this.offsetsFd = undefined;
    if (this.lockPath) rmSync(this.lockPath, { force: true });
  }
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
