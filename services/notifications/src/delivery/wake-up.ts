import type { Database, Unlisten } from '@sitemail/db';
import { onQueued } from '../store/queue-wake.ts';
import { RetryAlarm } from './retry-alarm.ts';

/**
 * What ends the claim loop's wait before its poll: deliveries queued by any process (NOTIFY,
 * store/queue-wake.ts), a retry this worker scheduled falling due (retry-alarm.ts), a send or an
 * outcome write finishing, and `wake()` from the consumer or a stop.
 */
export class WakeUp {
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private stopped = true;
  private unlisten: Unlisten | undefined;
  private readonly alarm: RetryAlarm;

  constructor(
    private readonly db: Database,
    clock: () => Date,
  ) {
    this.alarm = new RetryAlarm(
      () => this.wake(),
      () => clock().getTime(),
    );
  }

  /** LISTENs for deliveries queued by any process. */
  start(): void {
    this.stopped = false;
    this.unlisten = onQueued(this.db, () => this.wake());
  }

  /** Stops listening and forgets the retries scheduled; every wait from now on ends at once. */
  stop(): void {
    this.stopped = true;
    void this.unlisten?.(); // never fails; the LISTEN connection itself closes with the database
    this.alarm.stop();
  }

  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Wake at `at`: a deferred or throttled delivery's next try. */
  at(at: Date): void {
    this.alarm.at(at);
  }

  /** Waits `ms`, or less if woken; a wake-up that came while the worker was busy ends the next wait at once. */
  sleep(ms: number): Promise<void> {
    if (this.woken || this.stopped) {
      this.woken = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        this.woken = false;
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.wakeUp = finish;
    });
  }
}
