/**
 * A private Postgres for the chaos suite: its own data folder (temp), its own port, started and
 * stopped with the distribution's `initdb` / `pg_ctl`, so the suite can restart it under load
 * without touching the machine's shared server. Run as the `postgres` user when this process is
 * root (initdb refuses root). `fsync=off`: the suite kills Postgres processes, never the OS, so
 * the page cache survives every fault it injects, and the shared disk is spared.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '@sitemail/db';
import { freePort } from '../e2e/processes.ts';

const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<name> */
  urlOf(database: string): string;
  createDatabase(name: string): Promise<string>;
  /** `pg_ctl stop -m immediate` (every backend killed at once, as a crash), then start after `downMs`. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

function asPostgresUser(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n');
  const entry = passwd.find((l) => l.startsWith('postgres:'))?.split(':');
  if (!entry) throw new Error('running as root and there is no postgres user to run initdb as');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function run(cmd: string, args: string[], user: { uid?: number; gid?: number }) {
  const result = spawnSync(join(BIN, cmd), args, { encoding: 'utf8', ...user, timeout: 60_000 });
  if (result.error || result.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${result.error?.message ?? ''}${result.stderr}`);
  }
}

/** Data folders of the servers this process started and has not stopped (for an interrupted run). */
const running = new Map<string, { data: string; user: { uid?: number; gid?: number } }>();
let exitHooked = false;
/** A run stopped by Ctrl-C or SIGTERM must not leave its servers running and their folders behind. */
function stopAllOnSignal() {
  if (exitHooked) return;
  exitHooked = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const [dir, { data, user }] of running) {
        spawnSync(join(BIN, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { ...user, timeout: 20_000 });
        rmSync(dir, { recursive: true, force: true });
      }
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  if (!existsSync(join(BIN, 'initdb'))) throw new Error(`no initdb in ${BIN} (set PG_BIN)`);
  const user = asPostgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'sitemail-chaos-pg-'));
  if (user.uid !== undefined) chownSync(dir, user.uid, user.gid ?? 0);
  const data = join(dir, 'data');
  const port = await freePort();
  running.set(dir, { data, user });
  stopAllOnSignal();
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'], user);
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    `-c unix_socket_directories=${dir}`,
    '-c fsync=off',
    '-c max_connections=300',
    '-c shared_buffers=64MB',
  ].join(' ');
  const start = () => run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', 'start'], user);
  start();
  const urlOf = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    urlOf,
    async createDatabase(name) {
      const admin = await openDatabase({ url: urlOf('postgres'), maxConnections: 1 });
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.close();
      }
      return urlOf(name);
    },
    async restart(downMs) {
      run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'], user);
      await new Promise((r) => setTimeout(r, downMs));
      start();
    },
    async stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', 'stop'], user);
      } finally {
        running.delete(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
