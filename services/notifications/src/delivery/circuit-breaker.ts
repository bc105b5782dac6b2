import type { ReplyClass } from '../smtp/classify.ts';

export interface RelayBreakerOptions {
  /** Tries in a row without a reply (refused, timed out) before the relay counts as down. Default 3. */
  unreachableAfter: number;
  /** First probe this long after pausing, in ms. Default 5 s. */
  probeMinMs: number;
  /** Longest wait between probes, in ms. Default 60 s. */
  probeMaxMs: number;
  /**
   * An unreachable relay is probed every `probeMinMs` for this long before the probes back off:
   * an outage of a few minutes then drains within a probe period of the server's return. A relay
   * that refuses us backs off at once: each probe is a login, and failed logins lock accounts.
   * Default 5 min.
   */
  steadyProbingMs: number;
}

export const defaultRelayBreaker: RelayBreakerOptions = {
  unreachableAfter: 3,
  probeMinMs: 5_000,
  probeMaxMs: 60_000,
  steadyProbingMs: 300_000,
};

/** Whether the worker sends, or is paused and why: what the delivery log and the gauge show. */
export type QueueState =
  | { state: 'sending' }
  | {
      state: 'paused';
      /** `sender`: the relay refuses this sender as configured; `unreachable`: no relay answers. */
      cause: 'sender' | 'unreachable';
      /** In words, secrets already removed (the mailer's error message). */
      reason: string;
      since: Date;
      nextProbeAt: Date;
      /** Probes that failed since the pause began. */
      probes: number;
    };

interface Paused {
  cause: 'sender' | 'unreachable';
  reason: string;
  since: Date;
  nextProbeAt: Date;
  probes: number;
  intervalMs: number;
  /** The site config's sending settings when the pause began: a change resumes at once. */
  configKey: string;
}

/**
 * The delivery queue's circuit breaker: a failure that is the sender's (credentials, TLS, relay
 * denied, a config that cannot send) pauses the queue at once; tries that get no reply pause it
 * when `unreachableAfter` come in a row. While paused the worker claims nothing, so no delivery
 * is failed or charged for the relay's state. It resumes when the sending settings change, when
 * something with the saved settings got through (a probe, a `/test-email`), or on a probe that
 * succeeds. Pure state over times passed in; the worker does the I/O.
 */
export class RelayBreaker {
  private unreachableRun = 0;
  private paused: Paused | undefined;
  private probing = false;
  /** The last pause, for a relay that passes the probe but refuses the next send again. */
  private lastPause: { cause: Paused['cause']; intervalMs: number; endedAt: Date } | undefined;
  private readonly o: RelayBreakerOptions;

  constructor(options: Partial<RelayBreakerOptions> = {}) {
    this.o = { ...defaultRelayBreaker, ...options };
  }

  state(): QueueState {
    const p = this.paused;
    if (!p) return { state: 'sending' };
    return {
      state: 'paused',
      cause: p.cause,
      reason: p.reason,
      since: p.since,
      nextProbeAt: p.nextProbeAt,
      probes: p.probes,
    };
  }

  isPaused(): boolean {
    return this.paused !== undefined;
  }

  /** A send got through: the relay works. */
  succeeded(): void {
    this.unreachableRun = 0;
  }

  /**
   * A send failed as `c` says. Returns true when this failure paused the queue (the caller logs
   * it and hands back the claims it holds).
   */
  failed(c: ReplyClass, reason: string, now: Date, configKey: string): boolean {
    if (c.pause) return this.open('sender', reason, now, configKey);
    if (c.unreachable) {
      this.unreachableRun++;
      if (this.unreachableRun >= this.o.unreachableAfter) {
        return this.open(
          'unreachable',
          `the SMTP server did not answer ${this.unreachableRun} tries in a row (${reason})`,
          now,
          configKey,
        );
      }
      return false;
    }
    // The relay answered (a refusal about one recipient or message): it is up.
    this.unreachableRun = 0;
    return false;
  }

  /** Whether a failure of this class, while paused, is the pause's own (so the try is not charged). */
  coveredByPause(c: ReplyClass): boolean {
    return this.paused !== undefined && (c.pause || c.unreachable);
  }

  /** The site config's sending settings now; a change while paused resumes. Returns true if it resumed. */
  configIs(configKey: string, now: Date): boolean {
    if (!this.paused || this.paused.configKey === configKey) return false;
    this.resume(now);
    return true;
  }

  /** Whether a probe should start now (paused, due, none running); marks it started. */
  takeProbe(now: Date): boolean {
    if (!this.paused || this.probing || now < this.paused.nextProbeAt) return false;
    this.probing = true;
    return true;
  }

  /** The probe got through: resume. Returns true if this resumed the queue. */
  probeSucceeded(now: Date): boolean {
    this.probing = false;
    if (!this.paused) return false;
    this.resume(now);
    return true;
  }

  /** The probe failed: keep the pause, with the latest reason, and probe again later. */
  probeFailed(reason: string, now: Date): void {
    this.probing = false;
    const p = this.paused;
    if (!p) return;
    p.probes++;
    p.reason = p.cause === 'unreachable' ? `the SMTP server does not answer (${reason})` : reason;
    const steady = p.cause === 'unreachable' && now.getTime() - p.since.getTime() < this.o.steadyProbingMs;
    p.intervalMs = steady ? this.o.probeMinMs : Math.min(this.o.probeMaxMs, p.intervalMs * 2);
    p.nextProbeAt = new Date(now.getTime() + p.intervalMs);
  }

  /** Something with the saved settings got through (a `/test-email`): resume. */
  relayAnswered(now: Date): boolean {
    if (!this.paused) return false;
    this.resume(now);
    return true;
  }

  private open(cause: Paused['cause'], reason: string, now: Date, configKey: string): boolean {
    if (this.paused) return false;
    // Paused again soon after a probe let it resume, for the same cause (a relay that takes the
    // login but denies relaying, say): the probes go on backing off instead of starting over.
    const again =
      this.lastPause?.cause === cause &&
      now.getTime() - this.lastPause.endedAt.getTime() < 2 * this.o.probeMaxMs;
    const intervalMs =
      again && cause === 'sender'
        ? Math.min(this.o.probeMaxMs, this.lastPause!.intervalMs * 2)
        : this.o.probeMinMs;
    this.paused = {
      cause,
      reason,
      since: now,
      nextProbeAt: new Date(now.getTime() + intervalMs),
      probes: 0,
      intervalMs,
      configKey,
    };
    return true;
  }

  private resume(now: Date): void {
    const p = this.paused;
    if (p) this.lastPause = { cause: p.cause, intervalMs: p.intervalMs, endedAt: now };
    this.paused = undefined;
    this.unreachableRun = 0;
  }
}
