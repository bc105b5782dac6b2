export interface BackoffOptions {
  /** Delay before the second attempt, in ms. */
  baseMs: number;
  /** Upper bound of any delay, in ms. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
}

export const defaultBackoff: BackoffOptions = { baseMs: 30_000, maxMs: 3_600_000, factor: 2 };

/**
 * Delay before the attempt after attempt number `attempt` (1-based): exponential, capped, with
 * jitter in [50%, 100%] of the step so that many deliveries deferred by one outage do not all
 * come back at the same instant. `random` in [0, 1) is passed in to keep this pure.
 */
export function retryDelayMs(attempt: number, options: BackoffOptions, random: number): number {
  const step = Math.min(options.maxMs, options.baseMs * options.factor ** Math.max(0, attempt - 1));
  return Math.round(step * (0.5 + 0.5 * random));
}
