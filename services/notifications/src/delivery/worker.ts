import { randomUUID } from 'node:crypto';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import type { Mailer } from '../smtp/types.ts';
import type { AttemptOutcome } from '../store/queue.ts';
import { type BackoffOptions, defaultBackoff } from './backoff.ts';
import type { QueueState, RelayBreakerOptions } from './circuit-breaker.ts';
import { ClaimHeartbeat } from './claim-heartbeat.ts';
import { ClaimLoop } from './claim-loop.ts';
import { Housekeeping } from './housekeeping.ts';
import { OutcomeRecorder } from './outcomes.ts';
import { RelayPause } from './relay-pause.ts';
import type { Purged } from './retention.ts';
import { defaultSendRate, SendRate, type SendRateOptions } from './send-rate.ts';
import { WakeUp } from './wake-up.ts';

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

/**
 * Sends queued deliveries. Claims due rows in batches (FOR UPDATE SKIP LOCKED, so several
 * instances share one queue without sending a delivery twice), keeps up to `concurrency` sends in
 * flight, and records each outcome with the claim's attempt number, so a worker whose claim
 * expired and was taken over writes nothing. This class puts the parts together: the claim loop
 * (claim-loop.ts), the claim lease's heartbeat (claim-heartbeat.ts), what wakes the loop
 * (wake-up.ts), the relay pause (relay-pause.ts), housekeeping and the outcome recorder.
 */
export class DeliveryWorker {
  readonly workerId: string;
  private running = false;
  private readonly wakeUp: WakeUp;
  private readonly heartbeat: ClaimHeartbeat;
  /** Pauses claiming while the relay refuses the sender or does not answer (relay-pause.ts). */
  private readonly pause: RelayPause;
  private readonly loop: ClaimLoop;

  constructor(o: DeliveryWorkerOptions) {
    this.workerId = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    const concurrency = Math.max(1, o.concurrency ?? 5);
    const inFlightLimit = concurrency * Math.max(1, o.sendAhead ?? 2);
    const prefetch = Math.max(0, o.prefetch ?? Math.max(inFlightLimit, 20));
    const pollIntervalMs = o.pollIntervalMs ?? 1000;
    const claimTimeoutMs = o.claimTimeoutMs ?? 15_000;
    // At most half the lease: a claim is started only with more than one beat of lease left.
    const claimHeartbeatMs = Math.max(
      1,
      Math.min(o.claimHeartbeatMs ?? Math.min(5_000, claimTimeoutMs / 3), claimTimeoutMs / 2),
    );
    const sendTimeoutMs = o.sendTimeoutMs ?? 60_000;
    const maxAttempts = o.maxAttempts ?? 1000;
    const backoff: BackoffOptions = { ...defaultBackoff, ...o.backoff };
    const logger = o.logger ?? silent;
    const clock = o.clock ?? (() => new Date());
    const random = o.random ?? Math.random;
    const wake = () => this.wake();

    this.wakeUp = new WakeUp(o.db, clock);
    this.pause = new RelayPause({
      db: o.db,
      mailer: o.mailer,
      siteConfig: o.siteConfig,
      clock,
      logger,
      probeTimeoutMs: sendTimeoutMs,
      wake,
      ...(o.breaker ? { breaker: o.breaker } : {}),
    });
    this.heartbeat = new ClaimHeartbeat({
      db: o.db,
      workerId: this.workerId,
      leaseMs: claimTimeoutMs,
      beatMs: claimHeartbeatMs,
      clock,
      logger,
      onLost: (ids) => this.loop.dropLost(ids),
    });
    const housekeeping = new Housekeeping({
      db: o.db,
      siteConfig: o.siteConfig,
      logger,
      clock,
      maxAttempts,
      claimTimeoutMs,
      pollIntervalMs,
      ...(o.onPurged ? { onPurged: o.onPurged } : {}),
    });
    const outcomes = new OutcomeRecorder(o.db, this.workerId, logger, wake, (claims) =>
      this.heartbeat.release(claims),
    );
    this.loop = new ClaimLoop({
      db: o.db,
      workerId: this.workerId,
      siteConfig: o.siteConfig,
      inFlightLimit,
      prefetch,
      pollIntervalMs,
      claimTimeoutMs,
      clock,
      logger,
      attemptContext: {
        mailer: o.mailer,
        siteConfig: o.siteConfig,
        linkTokenKeys: o.linkTokenKeys,
        sendTimeoutMs,
        maxAttempts,
        backoff,
        clock,
        random,
        logger,
      },
      heartbeat: this.heartbeat,
      wakeUp: this.wakeUp,
      pause: this.pause,
      housekeeping,
      outcomes,
      // The claims held during a pause stay valid: the heartbeat renews them.
      rate: new SendRate({ ...defaultSendRate, ...o.throttlePause }),
      onAttempt: o.onAttempt,
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wakeUp.start();
    this.heartbeat.start();
    this.loop.start();
  }

  /** Sends in flight and claims waiting to be sent, for diagnostics (the bench samples it). */
  pipeline(): { inFlight: number; claimed: number; limit: number } {
    return this.loop.pipeline();
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
    this.wakeUp.wake();
  }

  /** Stops claiming, waits for the sends in flight, and hands back claims it had not started. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wakeUp.stop();
    await this.loop.stop();
    await this.heartbeat.stop();
  }
}
