/**
 * One run of the delivery worker for bench:delivery, in its own process so that its peak RSS is
 * the worker's alone: queues N deliveries in the given schema, starts the worker against the SMTP
 * sink, waits until every delivery is sent, and prints one JSON line with the figures.
 */
import { parseArgs } from 'node:util';
import { parseLinkTokenKey } from '@sitemail/contracts';
import { type Database, migrate, openDatabase } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import { DeliveryWorker } from '../src/delivery/worker.ts';
import { createMailer } from '../src/smtp/index.ts';
import { countByStatus } from '../src/store/deliveries.ts';
import { migrations } from '../src/store/migrations.ts';

const { values } = parseArgs({
  options: {
    emails: { type: 'string' },
    pool: { type: 'string' },
    port: { type: 'string' },
    schema: { type: 'string' },
    url: { type: 'string' },
    'send-ahead': { type: 'string', default: '2' },
    /** Emails queued per second while the worker runs, instead of all at once (a steady load). */
    'arrival-rate': { type: 'string' },
  },
});
const N = Number(values.emails);
const POOL = Number(values.pool);

/** Queues N deliveries in one statement, as the consumer would have (one processed event each). */
async function queue(db: Database, n: number, from = 1): Promise<void> {
  await db.query(
    `WITH ev AS (
       INSERT INTO processed_events (event_id, event_type, user_id, position, decisions)
       SELECT gen_random_uuid(), 'CodeMonitorTriggered', '0b6f4c1e-8d1a-4b9e-9a57-3f2d1c0e5a11', i, '[]'
       FROM generate_series($2::int, $2::int + $1 - 1) AS i
       RETURNING event_id, position
     )
     INSERT INTO deliveries (id, event_id, event_type, decision_index, email_kind, user_id, recipient_address, status,
       message, message_id, next_attempt_at, created_at, updated_at)
     SELECT id, event_id, 'CodeMonitorTriggered', 0, 'code-monitor-triggered', '0b6f4c1e-8d1a-4b9e-9a57-3f2d1c0e5a11',
       'bench@example.com', 'queued',
       jsonb_build_object('kind', 'code-monitor-triggered', 'username', 'bench', 'monitorName', 'bench monitor ' || position,
         'query', 'eval( lang:javascript', 'resultCount', 3, 'resultsPath', '/code-monitoring/bench/' || position),
       '<' || id || '@example.com>', clock_timestamp(), clock_timestamp(), clock_timestamp()
     FROM (SELECT gen_random_uuid() AS id, event_id, position FROM ev) AS q`,
    [n, from],
  );
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

const site: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com',
  'email.senderName': 'Bench',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: '127.0.0.1', port: Number(values.port), noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};

const db = await openDatabase({ url: values.url!, schema: values.schema!, maxConnections: 4 });
await migrate(db, 'notifications', migrations);
await db.query('TRUNCATE delivery_attempts, deliveries, processed_events');
const arrivalRate = values['arrival-rate'] ? Number(values['arrival-rate']) : undefined;
if (arrivalRate === undefined) await queue(db, N);
const idleRss = process.memoryUsage().rss;
const mailer = createMailer(() => site, { poolSize: POOL });
const worker = new DeliveryWorker({
  db,
  mailer,
  siteConfig: () => site,
  linkTokenKeys: parseLinkTokenKey(`bench:${Buffer.alloc(32, 1).toString('base64')}`),
  concurrency: POOL,
  sendAhead: Number(values['send-ahead']),
  pollIntervalMs: 200,
  workerId: 'bench',
});
const cpu = process.cpuUsage();
// Queued-to-accepted counts from this instant: the whole queue was queued "now" (a burst).
if (arrivalRate === undefined) {
  await db.query('UPDATE deliveries SET created_at = clock_timestamp(), next_attempt_at = clock_timestamp()');
}
const started = performance.now();
worker.start();
// A steady load: every 100 ms the emails due by then are queued, and the worker is told, as the
// consumer does after a batch.
const producing =
  arrivalRate === undefined
    ? Promise.resolve()
    : (async () => {
        let queued = 0;
        while (queued < N) {
          const due = Math.min(N, Math.floor(((performance.now() - started) / 1000) * arrivalRate));
          if (due > queued) {
            await queue(db, due - queued, queued + 1);
            queued = due;
            worker.wake();
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
// How full the pipeline is: when sends in flight stay at the limit, the worker is not the bottleneck.
const samples = { n: 0, full: 0 };
const sampler = setInterval(() => {
  const p = worker.pipeline();
  samples.n++;
  if (p.inFlight >= p.limit) samples.full++;
}, 5);
for (;;) {
  const counts = await countByStatus(db);
  if (counts.failed > 0) throw new Error(`${counts.failed} deliveries failed`);
  if (counts.sent >= N) break;
  await new Promise((r) => setTimeout(r, 50));
}
await producing;
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
const used = process.cpuUsage(cpu);
await worker.stop();
await mailer.close();
const { rows } = await db.query<{ ms: number }>(
  'SELECT extract(epoch FROM (sent_at - created_at)) * 1000 AS ms FROM deliveries ORDER BY 1',
);
await db.close();
const latencies = rows.map((r) => Number(r.ms));
console.log(
  JSON.stringify({
    rate: N / seconds,
    seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    // maxRSS is in KiB: the peak of this process over its whole life
    peak: process.resourceUsage().maxRSS * 1024,
    idleRss,
    cpu: (used.user + used.system) / 1000 / (seconds * 1000),
    pipelineFull: samples.n ? samples.full / samples.n : 0,
  }),
);
