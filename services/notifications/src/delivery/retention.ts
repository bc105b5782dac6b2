import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { purgeExpiredDeliveries, purgeExpiredProcessedEvents } from '../store/retention.ts';

/** Days the delivery log keeps a finished delivery when `email.delivery.retentionDays` is unset. */
export const defaultDeliveryRetentionDays = 90;
/** Kafka's default retention (7 days), assumed when `kafka.topicRetentionHours` is unset. */
export const defaultTopicRetentionHours = 168;

const DAY_MS = 24 * 3_600_000;

export interface Purged {
  deliveries: number;
  attempts: number;
  processedEvents: number;
}

export interface RetentionOptions {
  db: Database;
  siteConfig: () => SiteConfig;
  logger: { info(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
  clock: () => Date;
  /** How often a run starts (ms, default 10 minutes). */
  intervalMs?: number;
  /** Rows per batch (default 500): each batch is its own short transaction. */
  batchSize?: number;
  /** Batches per run and table (default 20): a large backlog is worked off over several runs. */
  maxBatches?: number;
  /** Told what a run removed (metrics). Must not throw. */
  onPurged?: (purged: Purged) => void;
}

/** The cut-offs in force at `now`: rows older than these are expired. */
export function retentionCutoffs(site: SiteConfig, now: Date): { deliveries: Date; processedEvents: Date } {
  const days = site['email.delivery.retentionDays'] ?? defaultDeliveryRetentionDays;
  const hours = site['kafka.topicRetentionHours'] ?? defaultTopicRetentionHours;
  return {
    deliveries: new Date(now.getTime() - days * DAY_MS),
    processedEvents: new Date(now.getTime() - hours * 3_600_000),
  };
}

/**
 * The retention job: finished deliveries (and their attempts) older than the delivery log's
 * retention, and processed-event rows older than the topic's retention, purged in small batches.
 * Safe with several instances (the store's batches skip rows another holds); what a run removed is
 * logged and reported to `onPurged`.
 */
export class Retention {
  private lastRun = Number.NEGATIVE_INFINITY;

  constructor(private readonly o: RetentionOptions) {}

  /** Runs when the interval has passed since the last run; a failure is logged, never thrown. */
  async runIfDue(): Promise<Purged | undefined> {
    const now = this.o.clock();
    if (now.getTime() - this.lastRun < (this.o.intervalMs ?? 10 * 60_000)) return undefined;
    this.lastRun = now.getTime();
    try {
      return await this.run(now);
    } catch (err) {
      this.o.logger.error({ err: (err as Error).message }, 'retention: purge failed');
      return undefined;
    }
  }

  /** One run at `now`, whatever the interval. */
  async run(now: Date): Promise<Purged> {
    const cutoffs = retentionCutoffs(this.o.siteConfig(), now);
    const limit = this.o.batchSize ?? 500;
    const maxBatches = this.o.maxBatches ?? 20;
    const purged: Purged = { deliveries: 0, attempts: 0, processedEvents: 0 };
    for (let i = 0; i < maxBatches; i++) {
      const batch = await purgeExpiredDeliveries(this.o.db, { before: cutoffs.deliveries, limit });
      purged.deliveries += batch.deliveries;
      purged.attempts += batch.attempts;
      if (batch.deliveries < limit) break;
    }
    // After the deliveries: processed events whose deliveries have just gone can go in this run.
    for (let i = 0; i < maxBatches; i++) {
      const n = await purgeExpiredProcessedEvents(this.o.db, { before: cutoffs.processedEvents, limit });
      purged.processedEvents += n;
      if (n < limit) break;
    }
    if (purged.deliveries + purged.attempts + purged.processedEvents > 0) {
      this.o.logger.info(
        {
          ...purged,
          deliveriesBefore: cutoffs.deliveries.toISOString(),
          processedEventsBefore: cutoffs.processedEvents.toISOString(),
        },
        'retention: purged expired rows',
      );
    }
    this.o.onPurged?.(purged);
    return purged;
  }
}
