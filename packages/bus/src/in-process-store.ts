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
import type { BusMessage } from './types.ts';

/*
 * Where the in-process bus keeps its topics and committed offsets: append-only JSON lines in
 * dataDir (or memory), and which consumer owns a (group, topic) at a time.
 */

/** One line of a topic file: offset, key, base64 value, headers, timestamp. */
interface StoredLine {
  o: number;
  k: string | null;
  v: string | null;
  h: Record<string, string>;
  t: number;
}

export interface NewMessage {
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

export class TopicLog {
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
export class Store {
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
