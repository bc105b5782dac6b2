import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';

/**
 * Postgres settings of the embedded database, for memory: PGlite touches all its shared memory at
 * start, and the default 128 MB of shared_buffers is most of an instance's (measured RSS on
 * reopen: 299 MB default, 168 MB at 16 MB, 149 MB with these). The OS caches the files anyway,
 * development data is small, and PGlite runs one backend, so 5 connections' worth of shared
 * state is plenty.
 */
const EMBEDDED_CONF = ['shared_buffers=8MB', 'wal_buffers=256kB', 'max_connections=5'];

/**
 * Creates the database files of a new data directory in a child process: initdb grows the WASM
 * heap to ~700 MB, which a WASM heap never gives back, so done in this process it would stay for
 * the process's life (measured: 714 MB RSS after a first open here, 175 MB after reopening).
 */
async function initInChildProcess(dataDir: string): Promise<void> {
  const pgliteUrl = import.meta.resolve('@electric-sql/pglite');
  const script = `const { PGlite } = await import(${JSON.stringify(pgliteUrl)});
const db = new PGlite(${JSON.stringify(dataDir)}, { postgresqlconf: ${JSON.stringify(EMBEDDED_CONF)} });
await db.waitReady;
await db.close();`;
  try {
    await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      timeout: 300_000,
    });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim();
    throw new Error(
      `could not create the embedded database in ${dataDir}: ${stderr || (err as Error).message}`,
    );
  }
}

/**
 * Where a freshly initialised, never used data directory is kept for the next new one: initdb
 * takes 10-20 s (most of a first `npm start`: measured 18 s of 20), a copy of its result well
 * under one. Under node_modules/.cache (the usual place for tools' caches, gone with a clean
 * install), one per PGlite version and settings; undefined where that is not writable (a
 * read-only image), and then each new directory runs its own initdb.
 */
export function templateDir(): string | undefined {
  const pglite = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  const at = pglite.lastIndexOf(`${sep}node_modules${sep}`);
  if (at < 0) return undefined;
  let version = 'unknown';
  try {
    const pkg = join(pglite.slice(0, at), 'node_modules', '@electric-sql', 'pglite', 'package.json');
    version = (JSON.parse(readFileSync(pkg, 'utf8')) as { version?: string }).version ?? version;
  } catch {
    // A layout without the package.json beside it: the settings still key the template.
  }
  const key = createHash('sha256')
    .update(JSON.stringify([version, EMBEDDED_CONF]))
    .digest('hex')
    .slice(0, 12);
  return join(pglite.slice(0, at), 'node_modules', '.cache', 'sitemail-pglite', `${version}-${key}`);
}

/**
 * A new data directory: a copy of the template when there is one, else initdb (in a child
 * process), which then also becomes the template. The template is made in a directory of its
 * own and renamed into place, so a concurrent start sees a whole one or none.
 */
async function createDataDir(dataDir: string): Promise<void> {
  const template = templateDir();
  if (template && existsSync(join(template, 'PG_VERSION'))) {
    try {
      cpSync(template, dataDir, { recursive: true });
      return;
    } catch {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  await initInChildProcess(dataDir);
  if (!template) return;
  const making = `${template}.${process.pid}`;
  try {
    mkdirSync(dirname(template), { recursive: true });
    cpSync(dataDir, making, { recursive: true });
    renameSync(making, template);
  } catch {
    // Not writable, or another process put its template there first: either way nothing to do.
  } finally {
    rmSync(making, { recursive: true, force: true });
  }
}

/**
 * The embedded databases of this process, one PGlite per data directory: every service of
 * `npm start` opens its schema in the same instance (one WASM Postgres instead of one per service,
 * about half the memory and start time). The instance closes when its last handle does.
 */
const open = new Map<string, { ready: Promise<PGlite>; handles: number; lock: string }>();

/** A PGlite data directory another live process holds (PGlite is one process's database). */
export class DataDirInUseError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `the embedded database in ${dataDir} is in use by process ${pid}: one process owns a PGlite ` +
        'directory. Run the services together (npm start), give each process its own DATA_DIR, or ' +
        `use Postgres (DATABASE_URL). If process ${pid} is not sitemail, delete ${dataDir}.lock`,
    );
    this.name = 'DataDirInUseError';
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes `<dataDir>.lock` for this process, or throws naming the live process that holds it. */
function lock(dataDir: string): string {
  const file = `${dataDir}.lock`;
  mkdirSync(dirname(file), { recursive: true });
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return file;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder))
      throw new DataDirInUseError(dataDir, holder);
    // A crashed process's lock (or an unreadable one): take it over.
    rmSync(file, { force: true });
  }
}

/** Opens (or shares) the PGlite of `dataDir`; `release` closes it after the last user. */
export async function acquirePglite(dataDir: string): Promise<{ pglite: PGlite; release(): Promise<void> }> {
  const key = resolve(dataDir);
  let entry = open.get(key);
  if (!entry) {
    const lockFile = lock(key);
    const ready = (async () => {
      if (!existsSync(join(key, 'PG_VERSION'))) await createDataDir(key);
      const pglite = new PGlite(key, { postgresqlconf: EMBEDDED_CONF });
      await pglite.waitReady;
      return pglite;
    })();
    entry = { ready, handles: 0, lock: lockFile };
    open.set(key, entry);
    ready.catch(() => {
      open.delete(key);
      rmSync(lockFile, { force: true });
    });
  }
  const held = entry;
  const pglite = await held.ready;
  held.handles++;
  let released = false;
  return {
    pglite,
    async release() {
      if (released) return;
      released = true;
      if (--held.handles > 0) return;
      open.delete(key);
      try {
        await pglite.close();
      } finally {
        rmSync(held.lock, { force: true });
      }
    },
  };
}

/**
 * Where an older sitemail kept this service's embedded database: its own PGlite directory with the
 * tables in `public`. Used as it is when present, so upgrading loses nothing; the caller says how to
 * move to the one shared instance.
 */
export function legacyPgliteDir(dir: string | undefined): string | undefined {
  return dir && existsSync(join(dir, 'PG_VERSION')) ? resolve(dir) : undefined;
}
