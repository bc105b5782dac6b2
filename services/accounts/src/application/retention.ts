import type { Database } from '@sitemail/db';
import { purgeExpiredLinkTokens } from '../store/retention.ts';

export interface RetentionOptions {
  db: Database;
  clock?: () => Date;
  /** Rows per delete statement. Default 500. */
  batchSize?: number;
  /** Most batches per run, so one run stays short; the rest waits for the next run. Default 20. */
  maxBatches?: number;
  /** Between runs. Default 1 hour. */
  intervalMs?: number;
  /** Told what a run removed (only when it removed something): counts, never a token or an address. */
  onPurged?: (removed: { linkTokens: number; byKind: Record<string, number> }) => void;
  onError?: (err: unknown) => void;
}

/** One run: expired link tokens, batch after batch until none is left or `maxBatches` ran. */
export async function runRetention(o: RetentionOptions) {
  const now = (o.clock ?? (() => new Date()))();
  const batchSize = o.batchSize ?? 500;
  const byKind: Record<string, number> = {};
  let linkTokens = 0;
  for (let batch = 0; batch < (o.maxBatches ?? 20); batch++) {
    const removed = await purgeExpiredLinkTokens(o.db, now, batchSize);
    for (const { kind } of removed) byKind[kind] = (byKind[kind] ?? 0) + 1;
    linkTokens += removed.length;
    if (removed.length < batchSize) break;
  }
  const result = { linkTokens, byKind };
  if (linkTokens > 0) o.onPurged?.(result);
  return result;
}

/**
 * Runs the retention job now and then every `intervalMs` (timers unref'd: it never keeps the
 * process alive). Safe with several instances at once (see store/retention.ts). `stop()` waits for
 * a run in progress.
 */
export function startRetention(o: RetentionOptions): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const tick = () => {
    running = runRetention(o)
      .catch((err) => o.onError?.(err))
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, o.intervalMs ?? 3_600_000).unref();
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
