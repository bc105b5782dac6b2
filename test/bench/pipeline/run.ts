/**
 * One bench run: start the pipeline, warm it up, then (1) a burst of N commands, timed from the
 * first command to the sink's accept of the last email; (2) raw pooled nodemailer sending N copies
 * of the same email to the same sink; (3) N/2 commands at a steady half of (1)'s rate, each timed
 * from its commit (the 201) to its email's accept; then the exactly-once check over every command,
 * the services' peak RSS, and finally `npm start` on its own.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../e2e/processes.ts';
import { bootstrapAdmin, burst, Ledger, rawPooled, steady } from './drive.ts';
import {
  cpuSeconds,
  measureNpmStart,
  type NpmStartFigures,
  plainNodeStartMs,
  processTree,
  procStatus,
} from './processes.ts';
import { startPipelineStack } from './stack.ts';
import { type StageFigures, stageBreakdown } from './stages.ts';

export interface BenchOptions {
  root: string;
  databaseUrl: string;
  n: number;
  /** Commands of the steady phase; default: about 40 s of it at its rate, at least 100, at most n/2. */
  steadyN?: number;
  warmupN: number;
  concurrency: number;
  partitions: number;
  logLevel: string;
  npmStart: boolean;
  /** Where to write both services' output (pino JSON lines) at the end, for looking into a figure. */
  logsDir?: string;
  nodeArgs?: string[];
  env?: Record<string, string>;
  log(line: string): void;
}

export interface ServiceFigures {
  startToLiveMs: number;
  startToReadyMs: number;
  idleRss: number;
  peakRss: number;
}

export interface BenchResults {
  options: Omit<BenchOptions, 'log' | 'root' | 'databaseUrl'>;
  settings: Record<string, string>;
  services: { accounts: ServiceFigures; notifications: ServiceFigures };
  throughput: {
    emails: number;
    seconds: number;
    rate: number;
    commandRate: number;
    missing: number;
    cpuSeconds: Record<string, number>;
  };
  raw: { emails: number; seconds: number; rate: number; missing: number; cpuSeconds: Record<string, number> };
  ratio: number;
  steady: {
    ratePerSecond: number;
    emails: number;
    p50: number;
    p90: number;
    p99: number;
    max: number;
    commandP50: number;
    commandP99: number;
    behindMs: number;
    missing: number;
    /** Where the latency goes (from the services' tables), or why that is unknown. */
    stages: StageFigures[] | string;
  };
  exactlyOnce: {
    commands: number;
    committed: number;
    receivedOnce: number;
    duplicates: number;
    missing: number;
    duplicateMessageIds: number;
  };
  failures: string[];
  npmStart: NpmStartFigures | { error: string } | undefined;
  loadAverage: number[];
  /** `node -e 0`, start to exit, median of 3: how fast this machine is right now (idle: ~40-60 ms). */
  nodeStartMs: number;
}

export const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

export async function runBench(o: BenchOptions): Promise<BenchResults> {
  const nodeStartMs = plainNodeStartMs();
  o.log(`starting the pipeline (Postgres, Kafka mock cluster, SMTP sink, both services built)…`);
  const stack = await startPipelineStack(o);
  const cpu = () => ({
    accounts: cpuSeconds(stack.accounts.pid),
    notifications: cpuSeconds(stack.notifications.pid),
    sink: cpuSeconds(stack.sink.pid),
    // The bench's other children: the Kafka mock cluster's native process.
    'kafka mock': processTree(process.pid)
      .filter(
        (pid) => ![process.pid, stack.accounts.pid, stack.notifications.pid, stack.sink.pid].includes(pid),
      )
      .reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    'bench driver': process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
  });
  const cpuSince = (before: Record<string, number>) =>
    Object.fromEntries(Object.entries(cpu()).map(([k, v]) => [k, v - (before[k] ?? 0)]));
  try {
    const idle = {
      accounts: procStatus(stack.accounts.pid, 'VmRSS'),
      notifications: procStatus(stack.notifications.pid, 'VmRSS'),
    };
    const ledger = new Ledger(stack.sink);
    const auth = await bootstrapAdmin(stack.accounts.url);
    const drive = { accountsUrl: stack.accounts.url, auth, ledger };
    const all: string[] = [];

    o.log(`warm-up: ${o.warmupN} commands…`);
    const warm = await burst({ ...drive, phase: 'warmup', n: o.warmupN, concurrency: o.concurrency });
    all.push(...warm.recipients);
    await ledger.received(warm.recipients, 60_000);

    o.log(`throughput: ${o.n} commands, ${o.concurrency} at a time…`);
    let before = cpu();
    const tp = await burst({ ...drive, phase: 'burst', n: o.n, concurrency: o.concurrency });
    all.push(...tp.recipients);
    const tpDone = await ledger.received(tp.recipients, 60_000);
    const tpCpu = cpuSince(before);
    const tpSeconds = (tpDone.lastAt - tp.startedAt) / 1000;
    const throughput = {
      emails: o.n - tpDone.missing,
      seconds: tpSeconds,
      rate: (o.n - tpDone.missing) / tpSeconds,
      commandRate: o.n / ((tp.lastCommitAt - tp.startedAt) / 1000),
      missing: tpDone.missing,
      cpuSeconds: tpCpu,
    };

    o.log(`raw pooled nodemailer: ${o.n} emails…`);
    before = cpu();
    const sample = await stack.sink.sample('burst.bench.example.com');
    const raw = await rawPooled({ sink: stack.sink, ledger, sampleRaw: sample, n: o.n, poolSize: 5 });
    const rawSeconds = (raw.lastAt - raw.startedAt) / 1000;
    const rawFigures = {
      emails: o.n - raw.missing,
      seconds: rawSeconds,
      rate: (o.n - raw.missing) / rawSeconds,
      missing: raw.missing,
      cpuSeconds: cpuSince(before),
    };

    const ratePerSecond = Math.max(1, throughput.rate / 2);
    const steadyN =
      o.steadyN ?? Math.max(1, Math.min(Math.floor(o.n / 2), Math.max(100, Math.round(ratePerSecond * 40))));
    o.log(`steady: ${steadyN} commands at ${ratePerSecond.toFixed(1)}/s…`);
    const st = await steady({ ...drive, phase: 'steady', n: steadyN, ratePerSecond });
    all.push(...st.recipients);
    const stDone = await ledger.received(st.recipients, 60_000);
    const latencies: number[] = [];
    const commands: number[] = [];
    for (const r of st.recipients) {
      const committed = ledger.committed.get(r);
      const accepted = ledger.accepted.get(r)?.[0];
      if (committed !== undefined) commands.push(committed - (ledger.sentAt.get(r) ?? committed));
      if (committed !== undefined && accepted !== undefined) latencies.push(accepted - committed);
    }
    latencies.sort((a, b) => a - b);
    commands.sort((a, b) => a - b);
    const stages = await stageBreakdown(stack.databaseUrl, st.recipients, ledger);

    // Late duplicates (a redelivery, a second send) would arrive after the first copy: give them a moment.
    await new Promise((r) => setTimeout(r, 2000));
    const counts = all.map((r) => ledger.accepted.get(r)?.length ?? 0);
    const exactlyOnce = {
      commands: all.length,
      committed: all.filter((r) => ledger.committed.has(r)).length,
      receivedOnce: counts.filter((c) => c === 1).length,
      duplicates: counts.filter((c) => c > 1).length,
      missing: counts.filter((c) => c === 0).length,
      duplicateMessageIds: [...ledger.messageIds.values()].filter((c) => c > 1).length,
    };
    const services = {
      accounts: {
        startToLiveMs: stack.accounts.startToLiveMs,
        startToReadyMs: stack.accounts.startToReadyMs,
        idleRss: idle.accounts,
        peakRss: procStatus(stack.accounts.pid, 'VmHWM'),
      },
      notifications: {
        startToLiveMs: stack.notifications.startToLiveMs,
        startToReadyMs: stack.notifications.startToReadyMs,
        idleRss: idle.notifications,
        peakRss: procStatus(stack.notifications.pid, 'VmHWM'),
      },
    };
    const loadAverage = loadavg();
    if (o.logsDir) {
      mkdirSync(o.logsDir, { recursive: true });
      for (const service of [stack.accounts, stack.notifications])
        writeFileSync(join(o.logsDir, `${service.name}.log`), service.output());
    }
    await stack.stop();

    let npmStart: BenchResults['npmStart'];
    if (o.npmStart) {
      o.log('npm start (embedded: PGlite, in-process bus) to both /readyz, then idle RSS…');
      const dataDir = mkdtempSync(join(tmpdir(), 'sitemail-bench-npm-start-'));
      try {
        npmStart = await measureNpmStart({
          root: o.root,
          dataDir,
          ports: { accounts: await freePort(), notifications: await freePort(), mailSink: await freePort() },
        });
      } catch (err) {
        // The pipeline's figures are in hand: a product that does not come up is a MISS, not a lost run.
        npmStart = { error: (err as Error).message.split('\n')[0] ?? 'failed' };
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
    const { log: _log, root: _root, databaseUrl: _url, ...options } = o;
    return {
      options,
      settings: stack.settings,
      services,
      throughput,
      raw: rawFigures,
      ratio: throughput.rate / rawFigures.rate,
      steady: {
        ratePerSecond,
        emails: latencies.length,
        p50: percentile(latencies, 50),
        p90: percentile(latencies, 90),
        p99: percentile(latencies, 99),
        max: latencies.at(-1) ?? Number.NaN,
        commandP50: percentile(commands, 50),
        commandP99: percentile(commands, 99),
        behindMs: st.behindMs,
        missing: stDone.missing,
        stages,
      },
      exactlyOnce,
      failures: ledger.failures,
      npmStart,
      loadAverage,
      nodeStartMs,
    };
  } catch (err) {
    const tail = (s: string) => s.split('\n').slice(-30).join('\n');
    o.log(
      `accounts output:\n${tail(stack.accounts.output())}\nnotifications output:\n${tail(stack.notifications.output())}`,
    );
    await stack.stop();
    throw err;
  }
}
