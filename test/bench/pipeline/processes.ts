/**
 * The processes the bench measures: each service on its production build, started with the
 * Dockerfile's CMD (`serviceEntry` of scripts/runtime-files.mjs, node flags included), and
 * `npm start`; their memory read from /proc (VmHWM is the kernel's peak resident set of a process,
 * so no sampling can miss a spike).
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { serviceCommand } from '../../../scripts/runtime-files.mjs';
import type { SinkReport } from './sink.ts';

export const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A `VmXxx:` figure of /proc/<pid>/status in bytes (0 once the process is gone). */
export function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** `pid` and every process below it (npm → sh → node …), from /proc/<pid>/stat's parent ids. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // The command name (field 2) may hold spaces and parentheses: fields after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone meanwhile
    }
  }
  const tree: number[] = [];
  const walk = (p: number) => {
    tree.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return tree;
}

export interface Service {
  name: string;
  url: string;
  pid: number;
  /** Process start (spawn) to the first 200 from /healthz (listening: code loaded, migrated), ms. */
  startToLiveMs: number;
  /** Process start (spawn) to the first 200 from /readyz, ms. */
  startToReadyMs: number;
  output(): string;
  stop(): Promise<void>;
}

/** Polls `url` every 10 ms until it answers 200; fails when `alive()` turns false or after `timeoutMs`. */
export async function waitFor200(url: string, alive: () => string | undefined, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dead = alive();
    if (dead) throw new Error(dead);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
    await sleep(10);
  }
}

function keepOutput(child: ChildProcess): () => string {
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 1_000_000) output = output.slice(-500_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => output;
}

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

async function stopChild(child: ChildProcess, graceMs = 20_000, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const signal = (s: NodeJS.Signals) => (group ? process.kill(-(child.pid as number), s) : child.kill(s));
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

/** One service on its production build, with only the environment given (and PATH). */
export async function startBuiltService(o: {
  name: 'accounts' | 'notifications';
  root: string;
  port: number;
  env: Record<string, string>;
  nodeArgs?: string[];
}): Promise<Service> {
  // The image's command line, with any extra flags after its own so that they win.
  const { nodeArgs, entry } = serviceCommand(o.name);
  const started = now();
  const child = spawn(process.execPath, [...nodeArgs, ...(o.nodeArgs ?? []), entry], {
    cwd: o.root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(o.port),
      ...o.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const output = keepOutput(child);
  const url = `http://127.0.0.1:${o.port}`;
  const dead = () =>
    child.exitCode !== null || child.signalCode !== null
      ? `${o.name} exited (${child.exitCode ?? child.signalCode}) before ready:\n${output()}`
      : undefined;
  let startToLiveMs = 0;
  try {
    await waitFor200(`${url}/healthz`, dead, 180_000);
    startToLiveMs = now() - started;
    await waitFor200(`${url}/readyz`, dead, 180_000);
  } catch (err) {
    await stopChild(child, 1000);
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  return {
    name: o.name,
    url,
    pid: child.pid as number,
    startToLiveMs,
    startToReadyMs: now() - started,
    output,
    stop: () => stopChild(child),
  };
}

export interface NpmStartFigures {
  startToReadyMs: number;
  /** Sum of VmRSS over npm's process tree once both services were ready and idle. */
  idleTreeRss: number;
  /** The product's own node process (the largest of the tree). */
  idleMainRss: number;
  processes: number;
}

/**
 * `npm start` in a temp DATA_DIR on free ports, the embedded defaults (no DATABASE_URL, no
 * KAFKA_BROKERS): time to both /readyz 200, then RSS of the whole tree after `settleMs` idle.
 */
export async function measureNpmStart(o: {
  root: string;
  dataDir: string;
  ports: { accounts: number; notifications: number; mailSink: number };
  settleMs?: number;
}): Promise<NpmStartFigures> {
  const { DATABASE_URL: _db, KAFKA_BROKERS: _kafka, NODE_OPTIONS: _opts, ...inherited } = process.env;
  const started = now();
  // Its own process group, so that stopping it reaches npm's children as Ctrl-C would.
  const child = spawn('npm', ['start'], {
    cwd: o.root,
    detached: true,
    env: {
      ...inherited,
      DATA_DIR: o.dataDir,
      ACCOUNTS_PORT: String(o.ports.accounts),
      NOTIFICATIONS_PORT: String(o.ports.notifications),
      MAIL_SINK_PORT: String(o.ports.mailSink),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const output = keepOutput(child);
  const dead = () =>
    child.exitCode !== null || child.signalCode !== null
      ? `npm start exited (${child.exitCode ?? child.signalCode}):\n${output()}`
      : undefined;
  try {
    await Promise.all(
      [o.ports.accounts, o.ports.notifications].map((port) =>
        waitFor200(`http://127.0.0.1:${port}/readyz`, dead, 300_000),
      ),
    );
    const startToReadyMs = now() - started;
    await sleep(o.settleMs ?? 3000);
    const tree = processTree(child.pid as number);
    const rss = tree.map((pid) => procStatus(pid, 'VmRSS'));
    return {
      startToReadyMs,
      idleTreeRss: rss.reduce((a, b) => a + b, 0),
      idleMainRss: Math.max(...rss),
      processes: tree.length,
    };
  } finally {
    await stopChild(child, 20_000, true);
  }
}

export interface Sink {
  port: number;
  /** Called with every batch of accepted messages as the sink reports them. */
  onAccepted(listener: (batch: { to: string; messageId: string | undefined; at: number }[]) => void): void;
  /** The first message the sink took for a recipient domain, whole. */
  sample(domain: string, timeoutMs?: number): Promise<string>;
  pid: number;
  stop(): Promise<void>;
}

/** sink.ts in its own process (tsx for its TypeScript; it is the bench's part, not a service). */
export async function startSink(): Promise<Sink> {
  const child = fork(join(import.meta.dirname, 'sink.ts'), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  running.add(child);
  const listeners: ((batch: { to: string; messageId: string | undefined; at: number }[]) => void)[] = [];
  const samples = new Map<string, string>();
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the bench sink exited (${code}) before listening`)));
    child.on('message', (m: SinkReport) => {
      if (m.kind === 'listening') resolve(m.port);
      else if (m.kind === 'accepted') for (const l of listeners) l(m.batch);
      else samples.set(m.domain, m.raw);
    });
  });
  return {
    port,
    pid: child.pid as number,
    onAccepted: (l) => listeners.push(l),
    async sample(domain, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (!samples.has(domain)) {
        if (Date.now() > deadline) throw new Error(`the sink received no email to @${domain}`);
        await sleep(20);
      }
      return samples.get(domain) as string;
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.disconnect();
      await exited;
      running.delete(child);
    },
  };
}

/** CPU time (user + system) a process has used so far, in seconds (clock ticks of 1/100 s on Linux). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat; after the command name they are at 11 and 12.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Plain `node -e 0`, start to exit, median of 3: the machine's speed at the moment, to read the other figures by. */
export function plainNodeStartMs(): number {
  const runs = [0, 1, 2].map(() => {
    const started = now();
    spawnSync(process.execPath, ['-e', '0']);
    return now() - started;
  });
  return runs.sort((a, b) => a - b)[1]!;
}
