import type { Queryable } from '@sitemail/db';
import { type HeldClaim, renewClaims } from '../store/claim-lease.ts';

export interface HeartbeatLogger {
  warn(obj: object, msg?: string): void;
}

export interface ClaimHeartbeatOptions {
  db: Queryable;
  workerId: string;
  /** The lease each renewal gives (`claimTimeoutMs`). */
  leaseMs: number;
  /** How often the claims held are renewed (`claimHeartbeatMs`). */
  beatMs: number;
  clock: () => Date;
  logger: HeartbeatLogger;
  /** Told the claims the database no longer has as ours: the worker must not start them. */
  onLost: (ids: ReadonlySet<string>) => void;
}

/**
 * Every claim the worker holds until its outcome is written (waiting, in flight, outcome not yet
 * recorded), with when its lease ends as last written (worker clock, ms), and the heartbeat that
 * renews them (store/claim-lease.ts): a live worker keeps its slow sends and throttle pauses, a
 * dead one's claims come back one lease after its last beat.
 */
export class ClaimHeartbeat {
  private readonly held = new Map<string, { attempt: number; until: number }>();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private failing = false;

  constructor(private readonly o: ClaimHeartbeatOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.renew(), this.o.beatMs);
    this.timer.unref();
  }

  /** Stops beating (after the worker handed back what it had not started) and forgets every claim. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
    this.held.clear();
  }

  /** Claims just taken, their lease running from `now` (ms). */
  hold(claims: readonly HeldClaim[], now: number): void {
    for (const c of claims) this.held.set(c.id, { attempt: c.attempt, until: now + this.o.leaseMs });
  }

  /** Outcomes written: no longer held. By attempt, since the same delivery may already be claimed again. */
  release(claims: readonly HeldClaim[]): void {
    for (const c of claims) if (this.held.get(c.id)?.attempt === c.attempt) this.held.delete(c.id);
  }

  /** Claims handed back to the queue. */
  forget(ids: readonly string[]): void {
    for (const id of ids) this.held.delete(id);
  }

  /**
   * Whether a claim may be started at `now` (ms): only with a lease left that outlasts the next
   * beat. Once renewals fail (the database is away) the claim may expire and be sent by another
   * worker, so one that may run out is forgotten, left to be reclaimed.
   */
  startable(id: string, now: number): boolean {
    const until = this.held.get(id)?.until ?? 0;
    if (until - now > this.o.beatMs) return true;
    this.held.delete(id);
    return false;
  }

  /**
   * The beat: renews every claim held. A claim the database no longer has as ours (it expired, say
   * while this process was frozen, and another worker reclaimed it) is dropped unsent; a send
   * already under way for it finishes and its outcome is not written.
   */
  renew(): Promise<void> {
    this.renewing ??= (async () => {
      if (this.held.size === 0) return;
      const claims = [...this.held].map(([id, h]) => ({ id, attempt: h.attempt }));
      const until = this.o.clock().getTime() + this.o.leaseMs;
      let still: Set<string>;
      try {
        still = await renewClaims(this.o.db, this.o.workerId, claims, new Date(until));
      } catch (err) {
        // Retried at the next beat; claims whose lease may run out meanwhile are not started.
        if (!this.failing)
          this.o.logger.warn({ err: (err as Error).message }, 'delivery worker: renewing claims failed');
        this.failing = true;
        return;
      }
      this.failing = false;
      const lost = new Set<string>();
      for (const c of claims) {
        const h = this.held.get(c.id);
        if (!h || h.attempt !== c.attempt) continue;
        if (still.has(c.id)) h.until = until;
        else {
          this.held.delete(c.id);
          lost.add(c.id);
        }
      }
      if (lost.size > 0) {
        this.o.onLost(lost);
        this.o.logger.warn({ lost: lost.size }, 'delivery worker: claims expired and were taken over');
      }
    })().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }
}
