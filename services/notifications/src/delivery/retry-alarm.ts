/**
 * Wakes the delivery worker when a retry it scheduled falls due, so a deferred or throttled
 * delivery is tried again at its time rather than at the next poll. One timer, set for the
 * earliest time pending; times past are dropped when it fires. Retries scheduled by another
 * instance (or before a restart) are found by that instance's alarm or by the poll.
 */
export class RetryAlarm {
  private readonly due: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Number.POSITIVE_INFINITY;

  /** Beyond this many pending times, later ones are left to the poll (a mass deferral). */
  private static readonly MAX_PENDING = 10_000;

  constructor(
    private readonly wake: () => void,
    private readonly now: () => number,
  ) {}

  /** Wake at `at` (or at once if it is past). */
  at(at: Date): void {
    const t = at.getTime();
    if (this.due.length >= RetryAlarm.MAX_PENDING) return;
    this.due.push(t);
    if (t < this.armedFor) this.arm(t);
  }

  private arm(t: number): void {
    clearTimeout(this.timer);
    this.armedFor = t;
    // setTimeout takes at most 2^31-1 ms; a later time re-arms when that fires.
    this.timer = setTimeout(() => this.fire(), Math.min(2 ** 31 - 1, Math.max(0, t - this.now())));
    // A pending retry never keeps the process alive on its own.
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.armedFor = Number.POSITIVE_INFINITY;
    const now = this.now();
    let next = Number.POSITIVE_INFINITY;
    let kept = 0;
    for (const t of this.due) {
      if (t > now) {
        this.due[kept++] = t;
        if (t < next) next = t;
      }
    }
    this.due.length = kept;
    if (next < Number.POSITIVE_INFINITY) this.arm(next);
    this.wake();
  }

  /** Forgets every pending time (the worker stopped; a send finishing later may set a new one). */
  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due.length = 0;
  }
}
