import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  claimDue,
  handBackClaims,
  type SuppressedAtClaim,
} from '../store/queue.ts';
import { type AttemptContext, attemptDelivery } from './attempt.ts';
import type { ClaimHeartbeat } from './claim-heartbeat.ts';
import { inDeliverySpan } from './delivery-span.ts';
import type { Housekeeping } from './housekeeping.ts';
import type { OutcomeRecorder } from './outcomes.ts';
import type { RelayPause } from './relay-pause.ts';
import type { SendRate } from './send-rate.ts';
import type { WakeUp } from './wake-up.ts';

export interface ClaimLoopLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface ClaimLoopOptions {
  db: Database;
  workerId: string;
  siteConfig: () => SiteConfig;
  /** Emails in flight at once (handed to the mailer): pool size × sendAhead. */
  inFlightLimit: number;
  /** Claims held ready beside those in flight, so a slow claim query never leaves a connection idle. */
  prefetch: number;
  pollIntervalMs: number;
  claimTimeoutMs: number;
  clock: () => Date;
  logger: ClaimLoopLogger;
  attemptContext: AttemptContext;
  heartbeat: ClaimHeartbeat;
  wakeUp: WakeUp;
  pause: RelayPause;
  housekeeping: Housekeeping;
  outcomes: OutcomeRecorder;
  /** Shared by every send: `email.smtp.maxMessagesPerSecond` and the pauses after throttling. */
  rate: SendRate;
  onAttempt?: ((outcome: AttemptOutcome) => void) | undefined;
}

/**
 * The worker's pipeline: claims due deliveries in batches, keeps up to `inFlightLimit` sends in
 * flight at the sending rate, and hands each outcome to the recorder. While the relay pause holds
 * (relay-pause.ts) it claims nothing and hands back the claims it had not started.
 */
export class ClaimLoop {
  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private buffered: ClaimedDelivery[] = [];
  private rateTimer: NodeJS.Timeout | undefined;
  private lastClaimWasFull = false;

  constructor(private readonly o: ClaimLoopOptions) {}

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops claiming, waits for the sends in flight, and hands back claims it had not started. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    this.o.wakeUp.wake();
    await this.loop;
    await this.o.pause.settled();
    await Promise.allSettled([...this.inFlight]);
    await this.o.outcomes.drain();
    const unstarted = this.buffered;
    this.buffered = [];
    if (unstarted.length > 0) {
      await handBackClaims(
        this.o.db,
        this.o.workerId,
        unstarted.map((c) => c.id),
      ).catch((err: Error) =>
        this.o.logger.warn({ err: err.message }, 'delivery worker: could not hand back claims'),
      );
    }
  }

  /** Sends in flight and claims waiting to be sent, for diagnostics (the bench samples it). */
  pipeline(): { inFlight: number; claimed: number; limit: number } {
    return { inFlight: this.inFlight.size, claimed: this.buffered.length, limit: this.o.inFlightLimit };
  }

  /** Claims another worker took over (the heartbeat found them gone): never started here. */
  dropLost(ids: ReadonlySet<string>): void {
    this.buffered = this.buffered.filter((b) => !ids.has(b.id));
  }

  /** While paused: the pause may end (config change, probe); expired claims are still reclaimed. */
  private async whilePaused(): Promise<void> {
    await this.o.pause.tend();
    if (!this.o.pause.isPaused()) return;
    try {
      await this.o.housekeeping.runIfDue();
    } catch (err) {
      this.o.logger.error(
        { err: (err as Error).message },
        'delivery worker: housekeeping failed while paused',
      );
    }
    await this.o.wakeUp.sleep(this.o.pollIntervalMs);
  }

  /** Claims not started yet go back to the queue at a pause, so they neither wait nor expire held. */
  private async handBackUnstarted(): Promise<void> {
    const ids = this.buffered.map((c) => c.id);
    this.buffered = [];
    this.o.heartbeat.forget(ids);
    if (ids.length === 0) return;
    await handBackClaims(this.o.db, this.o.workerId, ids).catch((err: Error) =>
      this.o.logger.warn({ err: err.message }, 'delivery worker: could not hand back claims'),
    );
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.o.pause.isPaused()) {
        await this.whilePaused();
        continue;
      }
      this.fillSlots();
      try {
        await this.o.housekeeping.runIfDue();
        await this.refill();
      } catch (err) {
        this.o.logger.error({ err: (err as Error).message }, 'delivery worker: claiming failed; retrying');
        await this.o.wakeUp.sleep(this.o.pollIntervalMs);
        continue;
      }
      this.fillSlots();
      // A full claim means more is due: claim again as soon as there is room. Otherwise wait for
      // a send to finish, a wake-up from the consumer, or the poll.
      if (this.lastClaimWasFull && this.inFlight.size < this.o.inFlightLimit) continue;
      await this.o.wakeUp.sleep(this.o.pollIntervalMs);
    }
  }

  private fillSlots(): void {
    while (
      this.running &&
      !this.o.pause.isPaused() &&
      this.buffered.length > 0 &&
      this.inFlight.size < this.o.inFlightLimit
    ) {
      const now = this.o.clock().getTime();
      const wait = this.o.rate.delay(now, this.maxPerSecond());
      if (wait > 0) {
        this.rateTimer ??= setTimeout(() => {
          this.rateTimer = undefined;
          this.fillSlots();
        }, wait);
        return;
      }
      const next = this.buffered.shift()!;
      if (!this.o.heartbeat.startable(next.id, now)) {
        this.o.logger.warn(
          { delivery: next.id },
          'delivery worker: claim not renewed in time; left to be reclaimed, not sent',
        );
        continue;
      }
      this.o.rate.started(now);
      this.startSend(next);
    }
  }

  private maxPerSecond = () => this.o.siteConfig()['email.smtp']?.maxMessagesPerSecond;

  /**
   * Keeps up to `prefetch` claims ready beside those in flight, so a slot that frees is filled at
   * once and claims go to the database in batches (topped up when half used) rather than one per email.
   */
  private async refill(): Promise<void> {
    const { inFlightLimit, prefetch } = this.o;
    // While the database does not take outcomes, claiming more would only grow what is unrecorded.
    if (this.o.outcomes.unrecorded > 4 * inFlightLimit + 500) {
      this.lastClaimWasFull = false;
      return;
    }
    const held = this.buffered.length + this.inFlight.size;
    let want = inFlightLimit + prefetch - held;
    // At a low rate, claim at most ~30 s of sends ahead: the rest stays free for other instances.
    const rate = this.maxPerSecond();
    if (rate) want = Math.min(want, Math.max(1, Math.floor(rate * 30)) - held);
    if (want <= 0 || (want < Math.max(1, Math.floor(prefetch / 2)) && held > 0)) {
      this.lastClaimWasFull = false;
      return;
    }
    const now = this.o.clock();
    const { claimed, suppressed } = await claimDue(this.o.db, {
      worker: this.o.workerId,
      limit: want,
      now,
      claimMs: this.o.claimTimeoutMs,
    });
    this.o.heartbeat.hold(claimed, now.getTime());
    this.buffered.push(...claimed);
    if (suppressed.length > 0) this.logSuppressed(suppressed);
    // Those suppressed took places in the claim too: a full one still means more may be due.
    this.lastClaimWasFull = claimed.length + suppressed.length === want;
  }

  /** Queued before their address was listed or their user opted out: the delivery log has each. */
  private logSuppressed(suppressed: SuppressedAtClaim[]): void {
    const byReason: Record<string, number> = {};
    for (const s of suppressed) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
    this.o.logger.info({ suppressed: byReason }, 'delivery worker: queued deliveries suppressed at claim');
  }

  private startSend(c: ClaimedDelivery): void {
    const p = this.send(c)
      .catch((err: Error) =>
        this.o.logger.error({ delivery: c.id, err: err.message }, 'delivery worker: send failed'),
      )
      .finally(() => {
        this.inFlight.delete(p);
        // The next claimed email takes the slot at once; the loop only tops up the claims.
        this.fillSlots();
        this.o.wakeUp.wake();
      });
    this.inFlight.add(p);
  }

  private async send(c: ClaimedDelivery): Promise<void> {
    // In the trace of the event that queued it (delivery-span.ts).
    const outcome = await inDeliverySpan(c, () => attemptDelivery(c, this.o.attemptContext));
    if (this.o.pause.observe(outcome)) await this.handBackUnstarted();
    if (outcome.status === 'throttled') {
      const { resumesAt, pauseMs } = this.o.rate.throttled(outcome.finishedAt.getTime());
      outcome.nextAttemptAt = new Date(resumesAt);
      if (pauseMs > 0)
        this.o.logger.warn({ pauseMs }, 'delivery worker: SMTP server throttles; pausing all sends');
    } else if (outcome.status === 'sent') this.o.rate.succeeded();
    if ((outcome.status === 'deferred' || outcome.status === 'throttled') && outcome.nextAttemptAt)
      this.o.wakeUp.at(outcome.nextAttemptAt);
    this.o.onAttempt?.(outcome);
    this.o.outcomes.record(outcome);
  }
}
