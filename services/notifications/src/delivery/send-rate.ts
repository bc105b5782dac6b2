export interface SendRateOptions {
  /** The first pause after a throttling reply, in ms. */
  pauseBaseMs: number;
  /** The longest pause (the claims held meanwhile stay valid: the worker's heartbeat renews them). */
  pauseMaxMs: number;
}

export const defaultSendRate: SendRateOptions = { pauseBaseMs: 1000, pauseMaxMs: 60_000 };

/**
 * When the worker may start its next send, shared by all its connections: sends are spaced
 * `1000 / maxPerSecond` ms apart (a bucket of one, so no burst beyond the rate), and a throttling
 * reply pauses every send. The pause doubles while throttling persists and resets on a success.
 * Pure: times are passed in (ms since the epoch).
 */
export class SendRate {
  private lastStart = Number.NEGATIVE_INFINITY;
  private pausedUntil = 0;
  private pauseMs = 0;

  constructor(private readonly options: SendRateOptions = defaultSendRate) {}

  /** How long to wait before a send may start at `now` (0: now), at `maxPerSecond` (unset: no cap). */
  delay(now: number, maxPerSecond: number | undefined): number {
    const spaced = maxPerSecond && maxPerSecond > 0 ? this.lastStart + 1000 / maxPerSecond : 0;
    return Math.max(0, Math.ceil(Math.max(spaced, this.pausedUntil) - now));
  }

  /** A send starts at `now`. */
  started(now: number): void {
    this.lastStart = now;
  }

  /**
   * A throttling reply arrived at `now`. Replies to sends started before the current pause began
   * say nothing new and do not lengthen it. Returns when sending resumes, and the length of the
   * pause this reply began (0 if it fell in one already begun).
   */
  throttled(now: number): { resumesAt: number; pauseMs: number } {
    if (now < this.pausedUntil) return { resumesAt: this.pausedUntil, pauseMs: 0 };
    this.pauseMs =
      this.pauseMs === 0 ? this.options.pauseBaseMs : Math.min(this.options.pauseMaxMs, this.pauseMs * 2);
    this.pausedUntil = now + this.pauseMs;
    return { resumesAt: this.pausedUntil, pauseMs: this.pauseMs };
  }

  /** A send succeeded: the provider takes this rate again, so the next throttle starts short. */
  succeeded(): void {
    this.pauseMs = 0;
  }
}
