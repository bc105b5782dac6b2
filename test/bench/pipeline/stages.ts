/**
 * Where the steady phase's latency goes, from what the services recorded (read once the phase is
 * over, before the database is dropped): commit → queued in notifications (outbox relay, Kafka,
 * consumer, decision: `deliveries.created_at`), queued → send started (the delivery worker's claim:
 * `delivery_attempts.started_at`), send started → accepted by the sink. The services' clocks are
 * this machine's, as the bench's is. Best effort: the tables are the services' own, so a schema
 * change makes this line say it is unavailable rather than failing the bench.
 */
import { openDatabase } from '@sitemail/db';
import type { Ledger } from './drive.ts';

export interface StageFigures {
  stage: string;
  p50: number;
  p99: number;
}

const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

export async function stageBreakdown(
  databaseUrl: string,
  recipients: string[],
  ledger: Ledger,
): Promise<StageFigures[] | string> {
  const db = await openDatabase({ url: databaseUrl, maxConnections: 1 });
  try {
    const rows = await db.query<{ address: string; queued: Date; started: Date | null }>(
      `SELECT lower(d.recipient_address) AS address, d.created_at AS queued, min(a.started_at) AS started
         FROM notifications.deliveries d
         LEFT JOIN notifications.delivery_attempts a ON a.delivery_id = d.id
        WHERE lower(d.recipient_address) = ANY($1::text[])
        GROUP BY d.id`,
      [recipients],
    );
    const toQueued: number[] = [];
    const toStarted: number[] = [];
    const toAccepted: number[] = [];
    for (const row of rows.rows) {
      const committed = ledger.committed.get(row.address);
      const accepted = ledger.accepted.get(row.address)?.[0];
      if (committed === undefined || accepted === undefined || !row.started) continue;
      const queued = new Date(row.queued).getTime();
      const started = new Date(row.started).getTime();
      toQueued.push(queued - committed);
      toStarted.push(started - queued);
      toAccepted.push(accepted - started);
    }
    if (toQueued.length === 0) return 'no steady delivery found in notifications.deliveries';
    return [
      { stage: 'commit → queued (relay, Kafka, consumer)', p50: pct(toQueued, 50), p99: pct(toQueued, 99) },
      { stage: 'queued → send started (worker claim)', p50: pct(toStarted, 50), p99: pct(toStarted, 99) },
      { stage: 'send started → sink accepted (SMTP)', p50: pct(toAccepted, 50), p99: pct(toAccepted, 99) },
    ];
  } catch (err) {
    return `stage breakdown unavailable: ${(err as Error).message}`;
  } finally {
    await db.close();
  }
}
