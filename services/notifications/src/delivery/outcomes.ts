import type { Queryable } from '@sitemail/db';
import { type AttemptOutcome, recordOutcomes } from '../store/queue.ts';

export interface OutcomeLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * Writes attempt outcomes in batches. Outcomes that arrive while a write is in progress go in the
 * next one, so under load one commit records many emails and the SMTP connections never wait for
 * the database. The claims stay valid meanwhile.
 */
export class OutcomeRecorder {
  private pending: AttemptOutcome[] = [];
  private flushing: Promise<void> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly workerId: string,
    private readonly logger: OutcomeLogger,
    /** Called after each write (the worker may claim again). */
    private readonly onWritten: () => void,
    /** Told the claims of each batch written: until then the worker keeps them alive. */
    private readonly onBatchWritten: (claims: { id: string; attempt: number }[]) => void = () => {},
  ) {}

  record(outcome: AttemptOutcome): void {
    this.pending.push(outcome);
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      this.onWritten();
    });
  }

  /** Outcomes not yet written; the worker stops claiming while too many wait. */
  get unrecorded(): number {
    return this.pending.length;
  }

  /** Resolves once every outcome recorded so far is written. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, 500);
      for (let attempt = 1; ; attempt++) {
        try {
          const recorded = await recordOutcomes(this.db, this.workerId, batch);
          if (recorded.size < batch.length) {
            this.logger.warn(
              { lost: batch.length - recorded.size },
              'delivery worker: claims lost before the outcome was recorded (taken over after expiring)',
            );
          }
          this.onBatchWritten(batch.map((o) => ({ id: o.delivery.id, attempt: o.delivery.attempt })));
          break;
        } catch (err) {
          // The database is away: keep the outcomes and try again; giving up would leave the claims
          // to expire and the emails to be sent again.
          this.logger.error(
            { err: (err as Error).message, attempt },
            'delivery worker: recording outcomes failed',
          );
          await new Promise((r) => setTimeout(r, Math.min(5000, 200 * attempt)));
        }
      }
    }
  }
}
