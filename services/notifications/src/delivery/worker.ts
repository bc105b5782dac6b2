import { randomUUID } from 'node:crypto';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { Database, Unlisten } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import type { Mailer } from '../smtp/types.ts';
import { renewClaims } from '../store/claim-lease.ts';
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  claimDue,
  handBackClaims,
  type SuppressedAtClaim,
} from '../store/queue.ts';
import { onQueued } from '../store/queue-wake.ts';
import { type AttemptContext, attemptDelivery } from './attempt.ts';
import { type BackoffOptions, defaultBackoff } from './backoff.ts';
import type { QueueState, RelayBreakerOptions } from './circuit-breaker.ts';
import { inDeliverySpan } from './delivery-span.ts';
import { Housekeeping } from './housekeeping.ts';
import { OutcomeRecorder } from './outcomes.ts';
import { RelayPause } from './relay-pause.ts';
import type { Purged } from './retention.ts';
import { RetryAlarm } from './retry-alarm.ts';
import { defaultSendRate, SendRate, type SendRateOptions } from './send-rate.ts';

export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DeliveryWorkerOptions {
  db: Database;
  mailer: Mailer;
  siteConfig: () => SiteConfig;
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  /** Names this instance in claims and attempts. Default: a random id. */
  workerId?: string;
  /** The mailer's pool size (SMTP connections). Default 5. */
  concurrency?: number;
  /**
   * Emails handed to the mailer per connection. 2 (the default) keeps one queued behind each
   * send, so a connection that finishes one email starts the next at once instead of idling
   * for a round trip through the worker; 1 is strictly one email per connection.
   */
  sendAhead?: number;
  /** Claims held ready beside those in flight (default: max(in-flight limit, 20)). */
  prefetch?: number;
  /**
   * How often to look for due deliveries when nothing woke the worker: the safety net. Deliveries
   * queued by any process wake it (NOTIFY), and retries it scheduled by its own timer. Default 1000 ms.
   */
  pollIntervalMs?: number;
  /**
   * The claim lease: how long a claim holds without a heartbeat. The worker renews the claims it
   * holds (waiting, in flight, outcome not yet written) every `claimHeartbeatMs`, so a claim that
   * outlives its lease is a dead (SIGKILLed, frozen, cut off) worker's and is reclaimed. Default 15 s.
   */
  claimTimeoutMs?: number;
  /** How often the claims held are renewed. Default a third of `claimTimeoutMs` (5 s). */
  claimHeartbeatMs?: number;
  /** A send taking longer than this counts as a connection failure (and is retried). Default 60 s. */
  sendTimeoutMs?: number;
  /**
   * A safety cap on attempts; deliveries are retried by time (`email.delivery.maxAgeHours`, or
   * until their link expires). Default 1000: far above the ~120 tries of 5 days at the default
   * backoff, it only bounds a delivery whose every try is lost (a send that hangs the process,
   * its claim expiring each time) or a backoff configured to nothing.
   */
  maxAttempts?: number;
  backoff?: Partial<BackoffOptions>;
  /** When the queue pauses for a relay that refuses the sender or does not answer, and how it probes. */
  breaker?: Partial<RelayBreakerOptions>;
  /** The pause after a throttling reply (growing while it persists). Default 1 s, up to 60 s. */
  throttlePause?: Partial<SendRateOptions>;
  logger?: WorkerLogger;
  /** Told about each attempt's outcome before it is recorded (metrics.ts). Must not throw. */
  onAttempt?: (outcome: AttemptOutcome) => void;
  /** Told what each retention run purged (metrics.ts). Must not throw. */
  onPurged?: (purged: Purged) => void;
  /** Injectable for tests. */
  clock?: () => Date;
  random?: () => number;
}

const silent: WorkerLogger = { info() {}, warn() {}, error() {} };

/** Queued before their address was listed or their user opted out: the delivery log has each. */
function logSuppressedAtClaim(logger: WorkerLogger, suppressed: SuppressedAtClaim[]): void {
  const byReason: Record<string, number> = {};
  for (const s of suppressed) byReason[s.reason] = (byReason[s.reason] ?? 0) + 1;
  logger.info({ suppressed: byReason }, 'delivery worker: queued deliveries suppressed at claim');
}

/**
 * Sends queued deliveries. Claims due rows in batches (FOR UPDATE SKIP LOCKED, so several
 * instances share one queue without sending a delivery twice), keeps up to `concurrency` sends in
 * flight, and records each outcome with the claim's attempt number, so a worker whose claim
 * expired and was taken over writes nothing.
 */
export class DeliveryWorker {
  readonly workerId: string;
  private readonly concurrency: number;
  /** Emails in flight at once (handed to the mailer): pool size × sendAhead. */
  private readonly inFlightLimit: number;
  /** Claims held ready beside those in flight, so a slow claim query never leaves a connection idle. */
  private readonly prefetch: number;
  private readonly pollIntervalMs: number;
  private readonly claimTimeoutMs: number;
  private readonly claimHeartbeatMs: number;
  private readonly sendTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly backoff: BackoffOptions;
  private readonly logger: WorkerLogger;
  private readonly clock: () => Date;
  private readonly random: () => number;
  private readonly outcomes: OutcomeRecorder;
  private readonly attemptContext: AttemptContext;
  /** Shared by every send: `email.smtp.maxMessagesPerSecond` and the pauses after throttling. */
  private readonly rate: SendRate;
  private rateTimer: NodeJS.Timeout | undefined;

  private running = false;
  private loop: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private buffered: ClaimedDelivery[] = [];
  /**
   * Every claim this worker holds until its outcome is written, with when its lease ends as last
   * written (worker clock, ms): the heartbeat renews them, and one whose lease may have run out is
   * not started (another worker may have reclaimed it).
   */
  private readonly held = new Map<string, { attempt: number; until: number }>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private renewalFailing = false;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private readonly housekeeping: Housekeeping;
  private unlisten: Unlisten | undefined;
  private readonly retryAlarm = new RetryAlarm(
    () => this.wake(),
    () => this.clock().getTime(),
  );
  /** Pauses claiming while the relay refuses the sender or does not answer (relay-pause.ts). */
  private readonly pause: RelayPause;

  constructor(private readonly o: DeliveryWorkerOptions) {
    this.workerId = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    this.concurrency = Math.max(1, o.concurrency ?? 5);
    this.inFlightLimit = this.concurrency * Math.max(1, o.sendAhead ?? 2);
    this.prefetch = Math.max(0, o.prefetch ?? Math.max(this.inFlightLimit, 20));
    this.pollIntervalMs = o.pollIntervalMs ?? 1000;
    this.claimTimeoutMs = o.claimTimeoutMs ?? 15_000;
    // At most half the lease: a claim is started only with more than one beat of lease left.
    this.claimHeartbeatMs = Math.max(
      1,
      Math.min(o.claimHeartbeatMs ?? Math.min(5_000, this.claimTimeoutMs / 3), this.claimTimeoutMs / 2),
    );
    this.sendTimeoutMs = o.sendTimeoutMs ?? 60_000;
    this.maxAttempts = o.maxAttempts ?? 1000;
    this.backoff = { ...defaultBackoff, ...o.backoff };
    this.logger = o.logger ?? silent;
    this.clock = o.clock ?? (() => new Date());
    this.random = o.random ?? Math.random;
    this.pause = new RelayPause({
      db: o.db,
      mailer: o.mailer,
      siteConfig: o.siteConfig,
      clock: this.clock,
      logger: this.logger,
      probeTimeoutMs: this.sendTimeoutMs,
      wake: () => this.wake(),
      ...(o.breaker ? { breaker: o.breaker } : {}),
    });
    // The claims held during a pause stay valid: the heartbeat renews them.
    this.rate = new SendRate({ ...defaultSendRate, ...o.throttlePause });
    this.housekeeping = new Housekeeping({
      db: o.db,
      siteConfig: o.siteConfig,
      logger: this.logger,
      clock: this.clock,
      maxAttempts: this.maxAttempts,
      claimTimeoutMs: this.claimTimeoutMs,
      pollIntervalMs: this.pollIntervalMs,
      ...(o.onPurged ? { onPurged: o.onPurged } : {}),
    });
    this.outcomes = new OutcomeRecorder(
      o.db,
      this.workerId,
      this.logger,
      () => this.wake(),
      (claims) => {
        // By attempt: the same delivery may already be claimed again for its next try.
        for (const c of claims) if (this.held.get(c.id)?.attempt === c.attempt) this.held.delete(c.id);
      },
    );
    this.attemptContext = {
      mailer: o.mailer,
      siteConfig: o.siteConfig,
      linkTokenKeys: o.linkTokenKeys,
      sendTimeoutMs: this.sendTimeoutMs,
      maxAttempts: this.maxAttempts,
      backoff: this.backoff,
      clock: this.clock,
      random: this.random,
      logger: this.logger,
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.unlisten = onQueued(this.o.db, () => this.wake());
    this.heartbeatTimer = setInterval(() => void this.renewHeld(), this.claimHeartbeatMs);
    this.heartbeatTimer.unref();
    this.loop = this.run();
  }

  /** Sends in flight and claims waiting to be sent, for diagnostics (the bench samples it). */
  pipeline(): { inFlight: number; claimed: number; limit: number } {
    return { inFlight: this.inFlight.size, claimed: this.buffered.length, limit: this.inFlightLimit };
  }

  /** Sending, or paused and why (the delivery log shows it). */
  queueState(): QueueState {
    return this.pause.state();
  }

  /**
   * Something sent with the saved settings got through (a `/test-email`): a paused queue resumes
   * at once instead of waiting for its next probe.
   */
  relayAnswered(): void {
    this.pause.relayAnswered();
  }

  /** Tells the worker new deliveries may be due (the consumer calls it after queueing). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Stops claiming, waits for the sends in flight, and hands back claims it had not started. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    void this.unlisten?.(); // never fails; the LISTEN connection itself closes with the database
    this.retryAlarm.stop();
    clearTimeout(this.rateTimer);
    this.rateTimer = undefined;
    this.wake();
    await this.loop;
    await this.pause.settled();
    await Promise.allSettled([...this.inFlight]);
    await this.outcomes.drain();
    const unstarted = this.buffered;
    this.buffered = [];
    if (unstarted.length > 0) {
      await handBackClaims(
        this.o.db,
        this.workerId,
        unstarted.map((c) => c.id),
      ).catch((err: Error) =>
        this.logger.warn({ err: err.message }, 'delivery worker: could not hand back claims'),
      );
    }
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    await this.renewing;
    this.held.clear();
  }

  /**
   * The heartbeat: renews every claim held. A claim the database no longer has as ours (it
   * expired, say while this process was frozen, and another worker reclaimed it) is dropped
   * unsent; a send already under way for it finishes and its outcome is not written.
   */
  private renewHeld(): Promise<void> {
    this.renewing ??= (async () => {
      if (this.held.size === 0) return;
      const claims = [...this.held].map(([id, h]) => ({ id, attempt: h.attempt }));
      const until = this.clock().getTime() + this.claimTimeoutMs;
      let still: Set<string>;
      try {
        still = await renewClaims(this.o.db, this.workerId, claims, new Date(until));
      } catch (err) {
        // Retried at the next beat; claims whose lease may run out meanwhile are not started.
        if (!this.renewalFailing)
          this.logger.warn({ err: (err as Error).message }, 'delivery worker: renewing claims failed');
        this.renewalFailing = true;
        return;
      }
      this.renewalFailing = false;
      const lost: string[] = [];
      for (const c of claims) {
        const h = this.held.get(c.id);
        if (!h || h.attempt !== c.attempt) continue;
        if (still.has(c.id)) h.until = until;
        else {
          this.held.delete(c.id);
          lost.push(c.id);
        }
      }
      if (lost.length > 0) {
        const gone = new Set(lost);
        this.buffered = this.buffered.filter((b) => !gone.has(b.id));
        this.logger.warn({ lost: lost.length }, 'delivery worker: claims expired and were taken over');
      }
    })().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  /** While paused: the pause may end (config change, probe); expired claims are still reclaimed. */
  private async whilePaused(): Promise<void> {
    await this.pause.tend();
    if (!this.pause.isPaused()) return;
    try {
      await this.housekeeping.runIfDue();
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'delivery worker: housekeeping failed while paused');
    }
    await this.sleep(this.pollIntervalMs);
  }

  /** Claims not started yet go back to the queue at a pause, so they neither wait nor expire held. */
  private async handBackUnstarted(): Promise<void> {
    const ids = this.buffered.map((c) => c.id);
    this.buffered = [];
    for (const id of ids) this.held.delete(id);
    if (ids.length === 0) return;
    await handBackClaims(this.o.db, this.workerId, ids).catch((err: Error) =>
      this.logger.warn({ err: err.message }, 'delivery worker: could not hand back claims'),
    );
  }

  private async run(): Promise<void> {
    while (this.running) {
      if (this.pause.isPaused()) {
        await this.whilePaused();
        continue;
      }
      this.fillSlots();
      try {
        await this.housekeeping.runIfDue();
        await this.refill();
      } catch (err) {
        this.logger.error({ err: (err as Error).message }, 'delivery worker: claiming failed; retrying');
        await this.sleep(this.pollIntervalMs);
        continue;
      }
      this.fillSlots();
      // A full claim means more is due: claim again as soon as there is room. Otherwise wait for
      // a send to finish, a wake-up from the consumer, or the poll.
      if (this.lastClaimWasFull && this.inFlight.size < this.inFlightLimit) continue;
      await this.sleep(this.pollIntervalMs);
    }
  }

  private fillSlots(): void {
    while (
      this.running &&
      !this.pause.isPaused() &&
      this.buffered.length > 0 &&
      this.inFlight.size < this.inFlightLimit
    ) {
      const now = this.clock().getTime();
      const wait = this.rate.delay(now, this.maxPerSecond());
      if (wait > 0) {
        this.rateTimer ??= setTimeout(() => {
          this.rateTimer = undefined;
          this.fillSlots();
        }, wait);
        return;
      }
      const next = this.buffered.shift()!;
      // Only with a lease left that outlasts the next beat: once renewals fail (the database is
      // away) the claim may expire and be sent by another worker, so it is left to be reclaimed.
      const until = this.held.get(next.id)?.until ?? 0;
      if (until - now <= this.claimHeartbeatMs) {
        this.held.delete(next.id);
        this.logger.warn(
          { delivery: next.id },
          'delivery worker: claim not renewed in time; left to be reclaimed, not sent',
        );
        continue;
      }
      this.rate.started(now);
      this.startSend(next);
    }
  }

  private maxPerSecond = () => this.o.siteConfig()['email.smtp']?.maxMessagesPerSecond;

  private lastClaimWasFull = false;

  /**
   * Keeps up to `prefetch` claims ready beside those in flight, so a slot that frees is filled at
   * once and claims go to the database in batches (topped up when half used) rather than one per email.
   */
  private async refill(): Promise<void> {
    // While the database does not take outcomes, claiming more would only grow what is unrecorded.
    if (this.outcomes.unrecorded > 4 * this.inFlightLimit + 500) {
      this.lastClaimWasFull = false;
      return;
    }
    const held = this.buffered.length + this.inFlight.size;
    let want = this.inFlightLimit + this.prefetch - held;
    // At a low rate, claim at most ~30 s of sends ahead: the rest stays free for other instances.
    const rate = this.maxPerSecond();
    if (rate) want = Math.min(want, Math.max(1, Math.floor(rate * 30)) - held);
    if (want <= 0 || (want < Math.max(1, Math.floor(this.prefetch / 2)) && held > 0)) {
      this.lastClaimWasFull = false;
      return;
    }
    const now = this.clock();
    const { claimed, suppressed } = await claimDue(this.o.db, {
      worker: this.workerId,
      limit: want,
      now,
      claimMs: this.claimTimeoutMs,
    });
    for (const c of claimed)
      this.held.set(c.id, { attempt: c.attempt, until: now.getTime() + this.claimTimeoutMs });
    this.buffered.push(...claimed);
    if (suppressed.length > 0) logSuppressedAtClaim(this.logger, suppressed);
    this.lastClaimWasFull = claimed.length + suppressed.length === want;
  }

  /** Waits `ms`, or less if woken; a wake-up that came while the worker was busy ends the next wait at once. */
  private sleep(ms: number): Promise<void> {
    if (this.woken || !this.running) {
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

  private startSend(c: ClaimedDelivery): void {
    const p = this.send(c)
      .catch((err: Error) =>
        this.logger.error({ delivery: c.id, err: err.message }, 'delivery worker: send failed'),
      )
      .finally(() => {
        this.inFlight.delete(p);
        // The next claimed email takes the slot at once; the loop only tops up the claims.
        this.fillSlots();
        this.wake();
      });
    this.inFlight.add(p);
  }

  private async send(c: ClaimedDelivery): Promise<void> {
    // In the trace of the event that queued it (delivery-span.ts).
    const outcome = await inDeliverySpan(c, () => attemptDelivery(c, this.attemptContext));
    if (this.pause.observe(outcome)) await this.handBackUnstarted();
    if (outcome.status === 'throttled') {
      const { resumesAt, pauseMs } = this.rate.throttled(outcome.finishedAt.getTime());
      outcome.nextAttemptAt = new Date(resumesAt);
      if (pauseMs > 0)
        this.logger.warn({ pauseMs }, 'delivery worker: SMTP server throttles; pausing all sends');
    } else if (outcome.status === 'sent') this.rate.succeeded();
    if ((outcome.status === 'deferred' || outcome.status === 'throttled') && outcome.nextAttemptAt)
      this.retryAlarm.at(outcome.nextAttemptAt);
    this.o.onAttempt?.(outcome);
    this.outcomes.record(outcome);
  }
}
