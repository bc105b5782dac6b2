import type { Logger } from './logger.ts';

/** Registers something opened, with how to close it; closed in reverse order of opening. */
export type Defer = (name: string, close: () => Promise<unknown> | unknown) => void;

export interface RunOptions {
  /** The process's name in log lines and the start-failure message. */
  name: string;
  logger: Logger;
  /**
   * Opens everything, registering each part with `defer` right after opening it (site config, db,
   * bus, then http): shutdown closes http first, then relay/consumer, bus, db, site config.
   */
  start(defer: Defer): Promise<void>;
  /** How long closing may take before the process gives up and exits 1 (default 15 s). */
  graceMs?: number;
  /** For tests: what ends the process (default `process.exit`). */
  exit?: (code: number) => void;
}

/**
 * Runs a service until SIGINT or SIGTERM, then closes what it opened within a grace period (exit 0;
 * 1 if a part failed to close or time ran out; a second signal exits 1 at once). A start failure
 * closes what was opened and exits 1 with one line naming the cause. Hand-written rather than
 * close-with-grace: the reverse-order bookkeeping it leaves to the caller is most of the job.
 */
export async function runUntilSignal(opts: RunOptions): Promise<void> {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const graceMs = opts.graceMs ?? 15_000;
  const opened: { name: string; close: () => Promise<unknown> | unknown }[] = [];
  const defer: Defer = (name, close) => {
    opened.push({ name, close });
  };

  const closeAll = async (): Promise<boolean> => {
    let clean = true;
    for (const part of opened.reverse()) {
      try {
        await part.close();
      } catch (err) {
        clean = false;
        opts.logger.error({ part: part.name, err }, `${opts.name}: closing ${part.name} failed`);
      }
    }
    opened.length = 0;
    return clean;
  };

  let stopping = false;
  const stop = async (reason: string, failed: boolean) => {
    if (stopping) {
      opts.logger.warn({ reason }, `${opts.name}: ${reason} again while shutting down; exiting now`);
      exit(1);
      return;
    }
    stopping = true;
    opts.logger.info({ reason }, `${opts.name}: ${reason}, shutting down`);
    // Not unref'd: a close that hangs on a promise with nothing else alive must still end in exit 1.
    const deadline = setTimeout(() => {
      opts.logger.error({ graceMs }, `${opts.name}: shutdown took longer than ${graceMs} ms; exiting`);
      exit(1);
    }, graceMs);
    const clean = await closeAll();
    clearTimeout(deadline);
    opts.logger.info(`${opts.name}: stopped`);
    exit(failed || !clean ? 1 : 0);
  };

  const onSignal = (signal: NodeJS.Signals) => void stop(signal, false);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onCrash = (err: unknown) => {
    opts.logger.error({ err }, `${opts.name}: unexpected error`);
    void stop('unexpected error', true);
  };
  process.on('uncaughtException', onCrash);
  process.on('unhandledRejection', onCrash);

  try {
    await opts.start(defer);
  } catch (err) {
    stopping = true;
    const message = err instanceof Error ? err.message : String(err);
    await closeAll();
    // One line, readable without a log viewer: this is what an operator sees when the config is wrong.
    process.stderr.write(`${opts.name} failed to start: ${message}\n`);
    exit(1);
  }
}
