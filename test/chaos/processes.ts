/**
 * The processes of a chaos run: each service on its production build, started with the runtime
 * image's command line (`serviceEntry` of scripts/runtime-files.mjs; `npm run build` first), and
 * the SMTP sink. Output is kept in memory (the tail) so a failure shows why; every process is killed when the harness exits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { serviceCommand } from '../../scripts/runtime-files.mjs';
import { freePort, REPO_ROOT } from '../e2e/processes.ts';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export type ServiceName = 'accounts' | 'notifications';

export interface ServiceInstance {
  name: ServiceName;
  /** e.g. notifications-2 */
  label: string;
  url: string;
  pid: number;
  /** ms from spawn to the first 200 from /healthz */
  liveMs: number;
  /**
   * ms from the service's first log line (its own code running: Node has loaded the build) to the
   * first 200 from /healthz; undefined when it logged nothing before it was live.
   */
  liveSinceCodeMs: number | undefined;
  /** CPU time (user + system, ms) the process had used when it was live, module loading included. */
  cpuToLiveMs: number;
  /** CPU time it used from its first log line to live: its start's own work, whatever the machine's load. */
  cpuSinceCodeMs: number | undefined;
  alive(): boolean;
  output(): string;
  /** SIGKILL; resolves once gone. */
  kill(): Promise<void>;
  /** SIGTERM (SIGKILL after graceMs); resolves once gone. */
  stop(graceMs?: number): Promise<void>;
  env: Record<string, string>;
}

export function entryOf(name: ServiceName): string {
  return `${REPO_ROOT}${serviceCommand(name).entry}`;
}

export function assertBuilt() {
  for (const name of ['accounts', 'notifications'] as const) {
    if (!existsSync(entryOf(name)))
      throw new Error(`${entryOf(name)} is missing: run \`npm run build\` first`);
  }
}

export async function startInstance(
  name: ServiceName,
  label: string,
  env: Record<string, string>,
  opts: { liveTimeoutMs?: number } = {},
): Promise<ServiceInstance> {
  const port = await freePort();
  const spawned = performance.now();
  const child = spawn(process.execPath, [...serviceCommand(name).nodeArgs, entryOf(name)], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  let cpuAtFirstLog: number | undefined;
  // CHAOS_LOGS=<folder>: every instance's whole output to <folder>/<label>.log, to read after a row.
  const logFile = process.env.CHAOS_LOGS ? join(process.env.CHAOS_LOGS, `${label}.log`) : undefined;
  if (process.env.CHAOS_LOGS) mkdirSync(process.env.CHAOS_LOGS, { recursive: true });
  const keep = (c: Buffer) => {
    if (logFile) appendFileSync(logFile, c);
    output += c.toString();
    if (cpuAtFirstLog === undefined && output.includes('"time":'))
      cpuAtFirstLog = cpuSeconds(child.pid ?? -1);
    if (output.length > 400_000) output = output.slice(-200_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.liveTimeoutMs ?? 120_000);
  for (;;) {
    if (gone())
      throw new Error(`${label} exited (${child.exitCode ?? child.signalCode}) before live:\n${output}`);
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    if (res?.ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${label} not live within the timeout:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  const liveMs = performance.now() - spawned;
  const liveAt = Date.now();
  const cpuToLiveMs = cpuSeconds(child.pid ?? -1) * 1000;
  const firstLog = output
    .split('\n')
    .map((line) => {
      try {
        return (JSON.parse(line) as { time?: number }).time;
      } catch {
        return undefined;
      }
    })
    .find((t) => typeof t === 'number');
  return {
    name,
    label,
    url,
    pid: child.pid ?? -1,
    liveMs,
    liveSinceCodeMs: firstLog !== undefined ? liveAt - firstLog : undefined,
    cpuToLiveMs,
    cpuSinceCodeMs: cpuAtFirstLog !== undefined ? cpuToLiveMs - cpuAtFirstLog * 1000 : undefined,
    env,
    alive: () => !gone(),
    output: () => output,
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 25_000) {
      if (gone()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Whether a start was live within `boundMs`: by the wall clock from the service's first log line
 * (its code running, the build loaded) when the machine has a core to spare for it, else by the
 * CPU time it used from then: on the shared 2-core machine at a load average of 20 a process gets
 * a tenth of a core, and its wall-clock start says more about the neighbours than the service.
 */
export function liveWithin(instance: ServiceInstance, boundMs: number): { ok: boolean; how: string } {
  const wall = instance.liveSinceCodeMs ?? instance.liveMs;
  const load = loadavg()[0] ?? 0;
  const how =
    `live ${Math.round(wall)} ms after its code started (${Math.round(instance.liveMs)} ms after the spawn, ` +
    `CPU ${Math.round(instance.cpuSinceCodeMs ?? Number.NaN)} ms since its code started, ${Math.round(instance.cpuToLiveMs)} ms ` +
    `with module loading; load average ${load.toFixed(1)} on ${cpus().length} cores)`;
  const ok =
    load <= cpus().length ? wall < boundMs : (instance.cpuSinceCodeMs ?? instance.cpuToLiveMs) < boundMs;
  return { ok, how };
}

/** GET /readyz: true when 200, else the body's reasons. */
export async function readiness(instance: ServiceInstance): Promise<true | string> {
  try {
    const res = await fetch(`${instance.url}/readyz`, { signal: AbortSignal.timeout(2500) });
    if (res.ok) return true;
    return (await res.text()).slice(0, 300);
  } catch (err) {
    return (err as Error).message;
  }
}

export async function waitReady(instance: ServiceInstance, timeoutMs: number): Promise<number> {
  const started = Date.now();
  let last: true | string = 'never asked';
  while (Date.now() - started < timeoutMs) {
    last = await readiness(instance);
    if (last === true) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${instance.label} not ready within ${timeoutMs} ms: ${last}`);
}

export interface SinkStats {
  total: number;
  /** [Message-ID, accepted at, key] */
  accepted: [string, number, string][];
  refused550: string[];
  greeted421: number;
  connections: number;
  inData: number;
}

export interface Sink {
  host: string;
  port: number;
  mode(m: { down?: boolean; greet421?: boolean; share550?: number; dataDelayMs?: number }): Promise<void>;
  /** Acceptances from index `from` on (all when 0). */
  stats(from?: number): Promise<SinkStats>;
  reset(): Promise<void>;
  pid: number;
  stop(): Promise<void>;
}

export async function startSink(): Promise<Sink> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${REPO_ROOT}test/chaos/sink.ts`], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.add(child);
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the SMTP sink exited (${code}) before ready`)));
  });
  const [, smtp, control] = line.split(' ').map(Number);
  const base = `http://127.0.0.1:${control}`;
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body) });
    if (!res.ok) throw new Error(`sink ${path}: ${res.status} ${await res.text()}`);
  };
  return {
    host: '127.0.0.1',
    port: smtp!,
    pid: child.pid ?? -1,
    mode: (m) => post('/mode', m),
    reset: () => post('/reset', {}),
    async stats(from = 0) {
      const res = await fetch(`${base}/stats?from=${from}`);
      return (await res.json()) as SinkStats;
    },
    async stop() {
      child.stdin?.end();
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    },
  };
}

/** CPU seconds (user + system) a process used so far, from /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
