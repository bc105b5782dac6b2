import { type FSWatcher, readFileSync, statSync, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { parseSiteConfig, SiteConfigError, validateSiteConfig } from './parse.ts';
import type { SiteConfig } from './types.ts';

export type SiteConfigListener = (config: SiteConfig, previous: SiteConfig) => void;

/** Where services get the site config from: always the last good config, and news of changes. */
export interface SiteConfigSource {
  current(): SiteConfig;
  /** Called after a valid change took effect. Returns the unsubscribe function. */
  onChange(listener: SiteConfigListener): () => void;
  close(): Promise<void>;
}

export interface SiteConfigLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface LoadSiteConfigOptions {
  logger?: SiteConfigLogger;
  /** Fallback poll for file systems where fs.watch misses changes (network mounts, some containers). */
  pollIntervalMs?: number;
  /** Quiet time after a change event before reading, so a half-written file is not read. */
  debounceMs?: number;
  /**
   * Keep the process alive while following the file (until `close()`). Off by default: a service's
   * server keeps its process alive, and a forgotten source should never stop a process exiting.
   */
  persistent?: boolean;
}

const silent: SiteConfigLogger = { info() {}, warn() {}, error() {} };

class Listeners {
  private readonly set = new Set<SiteConfigListener>();
  constructor(private readonly logger: SiteConfigLogger) {}
  add(listener: SiteConfigListener): () => void {
    this.set.add(listener);
    return () => {
      this.set.delete(listener);
    };
  }
  notify(config: SiteConfig, previous: SiteConfig) {
    for (const listener of [...this.set]) {
      // One listener's failure must not keep the change from the others.
      try {
        listener(config, previous);
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'site config: a change listener failed');
      }
    }
  }
  clear() {
    this.set.clear();
  }
}

function warnInsecure(config: SiteConfig, logger: SiteConfigLogger) {
  if (config['email.smtp']?.noVerifyTLS) {
    logger.warn(
      { key: 'email.smtp.noVerifyTLS' },
      'site config: email.smtp.noVerifyTLS is true: the SMTP server certificate is NOT verified, so the connection can be intercepted',
    );
  }
}

const sameConfig = (a: SiteConfig, b: SiteConfig) => JSON.stringify(a) === JSON.stringify(b);

/**
 * Reads the site config file now (throws `SiteConfigError` if it is invalid) and keeps following
 * it: a valid change takes effect at once and listeners hear of it; an invalid change is logged
 * with its keys and problems and the last good config stays in force.
 *
 * The directory is watched rather than the file because editors and config management replace
 * the file (write a temp file, rename over it), which ends a watch on the old inode. The poll
 * catches what watching misses.
 */
export function loadSiteConfig(path: string, opts: LoadSiteConfigOptions = {}): SiteConfigSource {
  const file = resolve(path);
  const logger = opts.logger ?? silent;
  const debounceMs = opts.debounceMs ?? 100;
  const pollIntervalMs = opts.pollIntervalMs ?? 5000;
  const persistent = opts.persistent ?? false;

  let lastText = readText(file);
  let config: SiteConfig;
  try {
    config = parseSiteConfig(lastText);
  } catch (err) {
    if (err instanceof SiteConfigError) throw new SiteConfigError(err.issues, file);
    throw err;
  }
  warnInsecure(config, logger);
  logger.info({ path: file }, 'site config loaded');

  const listeners = new Listeners(logger);
  let closed = false;
  let debounce: NodeJS.Timeout | undefined;
  let lastStat = statKey(file);

  const reload = () => {
    if (closed) return;
    let text: string;
    try {
      text = readText(file);
    } catch (err) {
      logger.error(
        { path: file, err: (err as Error).message },
        'site config: cannot read the file; keeping the last good config',
      );
      return;
    }
    if (text === lastText) return;
    lastText = text;
    let next: SiteConfig;
    try {
      next = parseSiteConfig(text);
    } catch (err) {
      if (!(err instanceof SiteConfigError)) throw err;
      logger.error(
        { path: file, issues: err.issues },
        `${new SiteConfigError(err.issues, file).message}; keeping the last good config`,
      );
      return;
    }
    if (sameConfig(next, config)) return;
    const previous = config;
    config = next;
    warnInsecure(config, logger);
    logger.info({ path: file }, 'site config reloaded');
    listeners.notify(config, previous);
  };

  const schedule = () => {
    if (closed) return;
    clearTimeout(debounce);
    debounce = setTimeout(reload, debounceMs);
    if (!persistent) debounce.unref();
  };

  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), { persistent }, (_event, name) => {
      // Some platforms give no name; then any change in the directory may be ours. Kubernetes
      // ConfigMap volumes swap a `..data` symlink instead of touching the file itself.
      if (name === null || name === basename(file) || name.startsWith('..')) schedule();
    });
    watcher.on('error', (err) => {
      logger.warn({ path: file, err: err.message }, 'site config: watching stopped; relying on polling');
      watcher?.close();
      watcher = undefined;
    });
  } catch (err) {
    logger.warn({ path: file, err: (err as Error).message }, 'site config: cannot watch; relying on polling');
  }

  const poll = setInterval(() => {
    const key = statKey(file);
    if (key !== lastStat) {
      lastStat = key;
      schedule();
    }
  }, pollIntervalMs);
  if (!persistent) poll.unref();

  return {
    current: () => config,
    onChange: (listener) => listeners.add(listener),
    close: async () => {
      closed = true;
      clearTimeout(debounce);
      clearInterval(poll);
      watcher?.close();
      listeners.clear();
    },
  };
}

function readText(file: string): string {
  return readFileSync(file, 'utf8');
}

function statKey(file: string): string {
  try {
    const s = statSync(file);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

export type StaticSiteConfigInput = Partial<SiteConfig> & { externalURL?: string };

/** The default `externalURL` of a static config: accounts in development serves the links. */
export const STATIC_DEFAULT_EXTERNAL_URL = 'http://localhost:3001';

/**
 * A site config held in memory, for tests and embedding. It is validated like a file (with the
 * same defaults); `set` replaces it and notifies listeners, as a file change would.
 */
export function staticSiteConfig(
  input: StaticSiteConfigInput,
): SiteConfigSource & { set(c: StaticSiteConfigInput): void } {
  const build = (c: StaticSiteConfigInput) =>
    validateSiteConfig({ externalURL: STATIC_DEFAULT_EXTERNAL_URL, ...c });
  let config = build(input);
  const listeners = new Listeners(silent);
  return {
    current: () => config,
    onChange: (listener) => listeners.add(listener),
    set: (c) => {
      const previous = config;
      config = build(c);
      listeners.notify(config, previous);
    },
    close: async () => {
      listeners.clear();
    },
  };
}
