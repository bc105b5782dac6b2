import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { sweepAwaitingDeliveries } from '../application/awaiting.ts';
import { reclaimExpiredClaims } from '../store/queue.ts';
import { type Purged, Retention } from './retention.ts';

export interface HousekeepingOptions {
  db: Database;
  siteConfig: () => SiteConfig;
  logger: {
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
  clock: () => Date;
  maxAttempts: number;
  claimTimeoutMs: number;
  pollIntervalMs: number;
  /** Told what each retention run purged (metrics). */
  onPurged?: (purged: Purged) => void;
}

/**
 * The delivery worker's periodic chores beside sending: expired claims, awaiting deliveries and
 * retention (delivery/retention.ts: old deliveries, attempts and processed events purged).
 */
export class Housekeeping {
  private lastReclaim = 0;
  private lastAwaitingSweep = 0;
  private readonly retention: Retention;

  constructor(private readonly o: HousekeepingOptions) {
    this.retention = new Retention({
      db: o.db,
      siteConfig: o.siteConfig,
      logger: o.logger,
      clock: o.clock,
      ...(o.onPurged ? { onPurged: o.onPurged } : {}),
    });
  }

  /** Runs each chore that is due; a failed reclaim throws (the worker retries), a failed sweep or purge is logged. */
  async runIfDue(): Promise<void> {
    await this.reclaimIfDue();
    await this.sweepAwaitingIfDue();
    await this.retention.runIfDue();
  }

  private async reclaimIfDue(): Promise<void> {
    const now = this.o.clock();
    // Expired claims are rare; looking for them every few polls is enough.
    if (now.getTime() - this.lastReclaim < Math.min(this.o.claimTimeoutMs / 4, 5 * this.o.pollIntervalMs))
      return;
    this.lastReclaim = now.getTime();
    const n = await reclaimExpiredClaims(this.o.db, { now, maxAttempts: this.o.maxAttempts });
    if (n > 0)
      this.o.logger.warn(
        { reclaimed: n },
        'delivery worker: reclaimed deliveries whose worker stopped mid-send',
      );
  }

  /**
   * Deliveries awaiting their recipient are decided again in the transaction that moves the
   * recipient; this sweep ends the waits that are over (suppressed, unless sendable by then) and
   * catches one that missed its recipient's update to a concurrent transaction.
   */
  private async sweepAwaitingIfDue(): Promise<void> {
    const now = this.o.clock();
    if (now.getTime() - this.lastAwaitingSweep < 5 * this.o.pollIntervalMs) return;
    this.lastAwaitingSweep = now.getTime();
    let result: { queued: number; suppressed: number };
    try {
      result = await sweepAwaitingDeliveries(this.o.db, { site: this.o.siteConfig(), now });
    } catch (err) {
      // Kept apart from claiming: a failing sweep must not stop the queue from being sent.
      this.o.logger.error(
        { err: (err as Error).message },
        'delivery worker: sweep of awaiting deliveries failed',
      );
      return;
    }
    const { queued, suppressed } = result;
    if (queued > 0 || suppressed > 0) {
      this.o.logger.info(
        { queued, suppressed },
        'delivery worker: decided deliveries that awaited their recipient',
      );
    }
  }
}
