import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import type { Mailer } from '../smtp/types.ts';
import { type AttemptOutcome, releaseRelayDeferrals } from '../store/queue.ts';
import type { FailedAttempt } from './attempt.ts';
import { type QueueState, RelayBreaker, type RelayBreakerOptions } from './circuit-breaker.ts';

export interface RelayPauseOptions {
  db: Database;
  mailer: Mailer;
  siteConfig: () => SiteConfig;
  clock: () => Date;
  logger: {
    info(obj: object, msg?: string): void;
    warn(obj: object, msg?: string): void;
    error(obj: object, msg?: string): void;
  };
  /** A probe taking longer than this failed. */
  probeTimeoutMs: number;
  /** Called after a resume: the worker claims again at once. */
  wake: () => void;
  breaker?: Partial<RelayBreakerOptions>;
}

/**
 * The worker's side of the circuit breaker (circuit-breaker.ts holds the rules): it feeds the
 * breaker each outcome, turns a try that failed for the pause's own reason into an uncounted one,
 * probes the relay while paused, and on resume makes the deliveries the relay's failure deferred
 * due at once, so an outage drains within a probe period of the server's return.
 */
export class RelayPause {
  private readonly breaker: RelayBreaker;
  private probe: Promise<void> | undefined;

  constructor(private readonly o: RelayPauseOptions) {
    this.breaker = new RelayBreaker(o.breaker);
  }

  state(): QueueState {
    return this.breaker.state();
  }

  isPaused(): boolean {
    return this.breaker.isPaused();
  }

  /** Resolves when no probe is running (the worker is stopping). */
  async settled(): Promise<void> {
    await this.probe;
  }

  /**
   * One attempt's outcome. Returns true when it paused the queue (the worker hands back the
   * claims it has not started). A deferral while paused for the same reason becomes `paused`:
   * due again at once and not counted, since the relay, not the delivery, failed.
   */
  observe(outcome: AttemptOutcome | FailedAttempt): boolean {
    if (outcome.status === 'sent') {
      this.breaker.succeeded();
      return false;
    }
    const reply = 'reply' in outcome ? outcome.reply : undefined;
    if (!reply) return false;
    const opened = this.breaker.failed(reply, outcome.error, outcome.finishedAt, this.sendingSettings());
    if (opened) {
      const state = this.breaker.state();
      this.o.logger.warn(
        { reason: state.state === 'paused' ? state.reason : undefined },
        'delivery queue paused: the SMTP server refuses this sender or does not answer; no delivery is failed meanwhile',
      );
    }
    if (outcome.status === 'deferred' && this.breaker.coveredByPause(reply)) {
      outcome.status = 'paused';
      outcome.nextAttemptAt = outcome.finishedAt;
    }
    return opened;
  }

  /**
   * While paused: resume when the sending settings changed (the site config file was edited;
   * compared at every poll, so whatever feeds the config counts), or start a probe when one is due.
   */
  async tend(): Promise<void> {
    if (this.breaker.configIs(this.sendingSettings(), this.o.clock())) {
      await this.resumed('the site config changed');
      return;
    }
    if (this.breaker.takeProbe(this.o.clock())) this.probe = this.probeRelay();
  }

  /** Something sent with the saved settings got through (a `/test-email`). */
  relayAnswered(): void {
    if (this.breaker.relayAnswered(this.o.clock()))
      void this.resumed('a test email with the saved settings was accepted');
  }

  /** The settings that decide whether sending can work; their change resumes a paused queue. */
  private sendingSettings(): string {
    const site = this.o.siteConfig();
    return JSON.stringify([site['email.smtp'] ?? null, site['email.address'] ?? null]);
  }

  /** Connects, greets and logs in with the saved settings (the mailer's verify). */
  private async probeRelay(): Promise<void> {
    try {
      // A mailer without verify is let through: the next send is the probe.
      if (this.o.mailer.verify) await withTimeout(this.o.mailer.verify(), this.o.probeTimeoutMs);
    } catch (err) {
      const reason = (err as Error)?.message ?? String(err);
      this.breaker.probeFailed(reason, this.o.clock());
      const state = this.breaker.state();
      this.o.logger.warn(
        { err: reason, nextProbeAt: state.state === 'paused' ? state.nextProbeAt.toISOString() : undefined },
        'delivery queue still paused: the probe of the SMTP server failed',
      );
      return;
    } finally {
      this.probe = undefined;
    }
    if (this.breaker.probeSucceeded(this.o.clock()))
      await this.resumed('a probe of the SMTP server succeeded');
  }

  /** After a pause: deliveries deferred by the relay's failure are due at once, and the worker runs. */
  private async resumed(why: string): Promise<void> {
    this.o.logger.info({ why }, 'delivery queue resumed');
    try {
      const released = await releaseRelayDeferrals(this.o.db, this.o.clock());
      if (released > 0)
        this.o.logger.info({ released }, 'delivery queue: deliveries deferred by the relay are due again');
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message },
        'delivery worker: releasing deliveries deferred by the relay failed',
      );
    }
    this.o.wake();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`mail: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
