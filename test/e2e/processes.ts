/**
 * Runs a service as its own OS process (`node --import tsx services/<name>/src/server.ts`), the
 * way it runs in production: configured only through its environment, reached only over HTTP.
 * Output is kept (and printed when the service dies early) so a failing scenario shows why.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
// Resolved here, not by the child: the child runs in its own working directory.
const TSX_LOADER = import.meta.resolve('tsx');

export interface ServiceProcess {
  name: string;
  url: string;
  pid: number;
  /** Everything the process wrote so far (stdout and stderr interleaved). */
  output(): string;
  /** False once the process has exited (crashed, or was stopped). */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL (a crash: nothing runs on the way out); resolves once the process is gone. */
  kill(): Promise<void>;
  /** What it was started with, to start it again the same way. */
  startOptions: StartServiceOptions;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to the test process, its services do not outlive it. */
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const killAll = () => {
    for (const child of running) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** A TCP port free right now on 127.0.0.1 (the service binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface StartServiceOptions {
  name: 'accounts' | 'notifications';
  port: number;
  env: Record<string, string>;
  cwd: string;
  /** Path answering 2xx once the service is ready. */
  readyPath: string;
  readyTimeoutMs?: number;
}

export async function startService(o: StartServiceOptions): Promise<ServiceProcess> {
  installExitHook();
  const entry = `${REPO_ROOT}services/${o.name}/src/server.ts`;
  const { DATABASE_URL: _inheritedDb, KAFKA_BROKERS: _inheritedKafka, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', TSX_LOADER, entry], {
    cwd: o.cwd,
    env: { ...inherited, NODE_ENV: 'test', HOST: '127.0.0.1', PORT: String(o.port), ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > 2_000_000) output = output.slice(-1_000_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running.delete(child);
      resolve();
    }),
  );

  const url = `http://127.0.0.1:${o.port}`;
  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`,
      );
    }
    try {
      const res = await fetch(`${url}${o.readyPath}`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${o.name} was not ready at ${url}${o.readyPath} within the timeout:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    name: o.name,
    url,
    pid: child.pid ?? -1,
    output: () => output,
    alive: () => child.exitCode === null && child.signalCode === null,
    startOptions: o,
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
