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

/** `email.delivery.maxAgeHours` when unset: 5 days, as Postfix's `maximal_queue_lifetime`. */
export const DEFAULT_MAX_AGE_HOURS = 120;

/** When a delivery stops being retried, and why: its link expires, or it reached the maximum age. */
export interface GiveUp {
  at: Date;
  reason: 'link-expired' | 'max-age';
}

/**
 * The give-up time of a delivery created at `createdAt`: its maximum age, or the expiry of the
 * link it carries when that comes first (sending a dead link later is worse than not sending it).
 */
export function giveUpOf(createdAt: Date, linkExpiresAt: string | undefined, maxAgeHours: number): GiveUp {
  const maxAge = new Date(createdAt.getTime() + maxAgeHours * 3_600_000);
  const link = linkExpiresAt ? new Date(linkExpiresAt) : undefined;
  return link && !Number.isNaN(link.getTime()) && link < maxAge
    ? { at: link, reason: 'link-expired' }
    : { at: maxAge, reason: 'max-age' };
}

/**
 * After a failure that may pass (4xx, connection failure): the next try, never later than the
 * give-up time (one last try at it: for a link, that try finds the link expired and sends
 * nothing), or giving up when the give-up time has come.
 */
export function retryOrGiveUp(o: {
  finishedAt: Date;
  attemptsUsed: number;
  giveUp: GiveUp;
  backoff: BackoffOptions;
  random: number;
}): { retryAt: Date } | { gaveUp: GiveUp['reason'] } {
  if (o.finishedAt >= o.giveUp.at) return { gaveUp: o.giveUp.reason };
  const next = o.finishedAt.getTime() + retryDelayMs(o.attemptsUsed, o.backoff, o.random);
  return { retryAt: new Date(Math.min(next, o.giveUp.at.getTime())) };
}
