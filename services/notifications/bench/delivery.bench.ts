/**
 * `npm run bench:delivery [-- --emails 5000 --pool 5 --per-connection 500]`
 *
 * Queues N deliveries in Postgres (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test,
 * in a throwaway schema) and measures the delivery worker sending them to an SMTP sink running
 * in a separate process (packages/mail-sink --discard). In the same run, two baselines to the
 * same sink: raw nodemailer with a pool of the same size sending pre-rendered messages, and one
 * new connection per email (the model of Sourcegraph's mailer; fewer emails, it is slow).
 * Prints emails/s, the ratios, queued-to-accepted latency p50/p99 and peak RSS per phase.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseLinkTokenKey } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import type { SiteConfig } from '@sitemail/site-config';
import nodemailer from 'nodemailer';
import type { EmailMessage } from '../src/domain/emails.ts';
import { renderEmail } from '../src/domain/templates/render.ts';

const { values } = parseArgs({
  options: {
    emails: { type: 'string', default: process.env.BENCH_EMAILS ?? '5000' },
    pool: { type: 'string', default: process.env.BENCH_POOL ?? '5' },
    'per-connection': { type: 'string', default: process.env.BENCH_PER_CONNECTION ?? '500' },
    /** Only the worker phase (for profiling it). */
    'worker-only': { type: 'boolean', default: false },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS ?? '3' },
    /** Emails handed to the mailer per connection (the worker's sendAhead). */
    'send-ahead': { type: 'string', default: '2' },
    /** Raw baseline with connections never recycled (maxMessages Infinity) instead of nodemailer's 100. */
    'raw-unlimited': { type: 'boolean', default: false },
  },
});
const N = Number(values.emails);
const POOL = Number(values.pool);
const PER_CONNECTION_N = Math.min(N, Number(values['per-connection']));
const ROUNDS = Math.max(1, Number(values.rounds));
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const root = resolve(import.meta.dirname, '../../..');

/** CPU time of the bench process during the last phase (ms). */
let lastCpuMs = 0;

/** Samples RSS while a phase runs; process.resourceUsage().maxRSS would only give the whole run's peak. */
function rssSampler() {
  const cpu = process.cpuUsage();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  return {
    stop: () => {
      clearInterval(timer);
      const used = process.cpuUsage(cpu);
      lastCpuMs = (used.user + used.system) / 1000;
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

async function startSink(): Promise<{ port: number; child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(root, 'packages/mail-sink/src/cli.ts'), '--port', '0', '--discard'],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
  );
  const port = await new Promise<number>((res, rej) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /mail-sink listening on (\d+)/.exec(out);
      if (m) res(Number(m[1]));
    });
    child.once('exit', (code) => rej(new Error(`mail-sink exited (${code}) before listening: ${out}`)));
  });
  child.stdout!.resume();
  return {
    port,
    child,
    stop: () =>
      new Promise<void>((res) => {
        child.once('exit', () => res());
        child.kill('SIGTERM');
      }),
  };
}

const message = (i: number): EmailMessage => ({
  kind: 'code-monitor-triggered',
  username: 'bench',
  monitorName: `bench monitor ${i}`,
  query: 'eval( lang:javascript',
  resultCount: 3,
  resultsPath: `/code-monitoring/bench/${i}`,
});

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

export interface PhaseResult {
  rate: number;
  seconds: number;
  p50: number;
  p99: number;
  peak: number;
  cpu: number;
  idleRss?: number;
  /** Share of the run the worker had its in-flight limit of sends going (worker runs only). */
  pipelineFull?: number;
}

/**
 * The worker as a production build would run it: bench/worker-child.ts bundled by esbuild (the
 * one tsx ships; dependencies stay external) and run by plain node. Under tsx the loader keeps a
 * second copy of every module's source, which adds some 100 MB of RSS that is not the worker's.
 */
async function bundleWorkerChild(): Promise<string> {
  const esbuild = createRequire(createRequire(import.meta.url).resolve('tsx/package.json'))('esbuild') as {
    build(options: Record<string, unknown>): Promise<unknown>;
  };
  // Under node_modules so that plain node resolves the external packages from the repo.
  const outfile = join(root, 'node_modules/.cache/sitemail-bench/worker-child.mjs');
  await esbuild.build({
    entryPoints: [join(import.meta.dirname, 'worker-child.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'warning',
    plugins: [
      {
        name: 'workspace-only',
        setup(build: { onResolve(o: { filter: RegExp }, cb: (a: { path: string }) => unknown): void }) {
          // Workspace packages are TypeScript and get bundled; everything else loads from node_modules.
          build.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith('@sitemail/') ? undefined : { external: true },
          );
        },
      },
    ],
  });
  return outfile;
}

async function benchWorker(
  runtime: 'bundled' | 'tsx',
  child: string,
  port: number,
  schema: string,
  arrivalRate?: number,
): Promise<PhaseResult> {
  const args =
    runtime === 'bundled' ? [child] : ['--import', 'tsx', join(import.meta.dirname, 'worker-child.ts')];
  const proc = spawn(
    process.execPath,
    [
      ...args,
      '--emails',
      String(N),
      '--pool',
      String(POOL),
      '--port',
      String(port),
      '--schema',
      schema,
      '--url',
      DATABASE_URL,
      '--send-ahead',
      values['send-ahead']!,
      ...(arrivalRate ? ['--arrival-rate', String(Math.round(arrivalRate))] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: root },
  );
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const code = await new Promise<number | null>((res) => proc.once('exit', res));
  if (code !== 0) throw new Error(`worker run (${runtime}) exited with ${code}: ${out}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as PhaseResult;
}

function prerendered(site: SiteConfig, n: number) {
  const ctx = { site, linkTokenKeys: parseLinkTokenKey(`bench:${Buffer.alloc(32, 1).toString('base64')}`) };
  return Array.from({ length: n }, (_, i) => {
    const r = renderEmail(message(i), ctx);
    return { from: '"Bench" <from@example.com>', to: 'bench@example.com', ...r };
  });
}

async function benchRawPooled(port: number, site: SiteConfig) {
  const messages = prerendered(site, N);
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: true,
    // nodemailer's pool as it comes, with the same size: what the service's mailer builds on
    // (it too leaves maxMessages at the default 100 per connection).
    pool: true,
    maxConnections: POOL,
    ...(values['raw-unlimited'] ? { maxMessages: Number.POSITIVE_INFINITY } : {}),
  });
  const rss = rssSampler();
  const started = performance.now();
  const latencies = await Promise.all(
    messages.map(async (m) => {
      await transport.sendMail(m);
      return performance.now() - started;
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const peak = rss.stop();
  transport.close();
  latencies.sort((a, b) => a - b);
  return {
    rate: N / seconds,
    seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    peak,
    cpu: lastCpuMs / (seconds * 1000),
  };
}

async function benchConnectionPerEmail(port: number, site: SiteConfig) {
  const messages = prerendered(site, PER_CONNECTION_N);
  const rss = rssSampler();
  const started = performance.now();
  const latencies: number[] = [];
  let next = 0;
  // The same parallelism as the pool: POOL senders, each opening a connection per email.
  await Promise.all(
    Array.from({ length: POOL }, async () => {
      while (next < messages.length) {
        const m = messages[next++]!;
        const transport = nodemailer.createTransport({
          host: '127.0.0.1',
          port,
          secure: false,
          ignoreTLS: true,
        });
        await transport.sendMail(m);
        transport.close();
        latencies.push(performance.now() - started);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const peak = rss.stop();
  latencies.sort((a, b) => a - b);
  return {
    rate: PER_CONNECTION_N / seconds,
    seconds,
    p50: pct(latencies, 50),
    p99: pct(latencies, 99),
    peak,
    cpu: lastCpuMs / (seconds * 1000),
  };
}

async function main() {
  console.log(
    `bench:delivery: ${N} emails, pool ${POOL}, Postgres ${DATABASE_URL.replace(/\/\/[^@]*@/, '//')}`,
  );
  const sink = await startSink();
  const site: SiteConfig = {
    externalURL: 'https://sourcegraph.example.com',
    'email.senderName': 'Bench',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', host: '127.0.0.1', port: sink.port, noVerifyTLS: false },
    'auth.providers': [{ type: 'builtin' }],
  };
  const schema = `bench_delivery_${randomBytes(4).toString('hex')}`;
  const db = await openDatabase({ url: DATABASE_URL, schema, maxConnections: 4 });
  try {
    const child = await bundleWorkerChild();
    type Result = PhaseResult;
    const row = (name: string, n: number, r: Result) =>
      `  ${name.padEnd(34)} ${String(n).padStart(6)} emails  ${r.rate.toFixed(0).padStart(6)} emails/s  p50 ${r.p50.toFixed(0).padStart(6)} ms  p99 ${r.p99.toFixed(0).padStart(6)} ms  peak RSS ${mb(r.peak)}  CPU ${(r.cpu * 100).toFixed(0)}% of a core${r.pipelineFull !== undefined ? `  pipeline full ${(r.pipelineFull * 100).toFixed(0)}% of the time` : ''}`;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const workers: Result[] = [];
    const raws: Result[] = [];
    // Worker and raw baseline alternate, so that load from elsewhere on the machine hits both alike.
    for (let round = 1; round <= ROUNDS; round++) {
      const worker = await benchWorker('bundled', child, sink.port, schema);
      workers.push(worker);
      console.log(row(`round ${round}: delivery worker`, N, worker));
      if (values['worker-only']) continue;
      const raw = await benchRawPooled(sink.port, site);
      raws.push(raw);
      console.log(row(`round ${round}: raw nodemailer, pooled`, N, raw));
    }
    // Once more as `npm start` runs it, through tsx, to show what the loader costs.
    const underTsx = await benchWorker('tsx', child, sink.port, schema);
    console.log(row('delivery worker under tsx', N, underTsx));
    // Latency under a steady load at half the burst rate, rather than with the whole queue waiting.
    const steadyRate = Math.max(1, Math.round(median(workers.map((w) => w.rate)) / 2));
    const steady = await benchWorker('bundled', child, sink.port, schema, steadyRate);
    console.log(row(`delivery worker, steady ${steadyRate}/s`, N, steady));
    if (values['worker-only']) return;
    const perConnection = await benchConnectionPerEmail(sink.port, site);
    console.log(row('one connection per email', PER_CONNECTION_N, perConnection));
    const ratios = workers.map((w, i) => w.rate / raws[i]!.rate);
    const workerRate = median(workers.map((w) => w.rate));
    const peak = Math.max(...workers.map((w) => w.peak));
    console.log('');
    console.log(
      `  worker (median of ${ROUNDS}):           ${workerRate.toFixed(0)} emails/s, p50 ${median(workers.map((w) => w.p50)).toFixed(0)} ms, p99 ${median(workers.map((w) => w.p99)).toFixed(0)} ms`,
    );
    console.log(
      `  raw pooled (median of ${ROUNDS}):       ${median(raws.map((r) => r.rate)).toFixed(0)} emails/s`,
    );
    console.log(`  connection per email:           ${perConnection.rate.toFixed(0)} emails/s`);
    console.log(
      `  worker / raw pooled:            ${median(ratios).toFixed(2)} median (rounds: ${ratios.map((r) => r.toFixed(2)).join(', ')})  target >= 0.7`,
    );
    console.log(
      `  worker / connection per email:  ${(workerRate / perConnection.rate).toFixed(1)}x  target >= 3x`,
    );
    console.log(
      `  worker peak RSS:                ${mb(peak)} (process, bundled; ${mb(workers[0]!.idleRss ?? 0)} before sending)  target <= 150 MB`,
    );
    console.log(
      `                                  ${mb(underTsx.peak)} under tsx (${mb(underTsx.idleRss ?? 0)} before sending)`,
    );
    console.log(
      `  steady load ${steadyRate}/s:             p50 ${steady.p50.toFixed(0)} ms, p99 ${steady.p99.toFixed(0)} ms queued-to-accepted`,
    );
    console.log('  burst latency is queued-to-accepted with the whole queue queued at the start.');
  } finally {
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await db.close();
    await sink.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
