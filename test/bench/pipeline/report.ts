/** The bench's table: each figure beside its target (issue 14's "Must show"), PASS or MISS. */
import type { BenchResults } from './run.ts';

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;
const ms = (v: number) => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : 'n/a');
const s = (v: number) => `${(v / 1000).toFixed(2)} s`;

interface Row {
  what: string;
  figure: string;
  target?: string;
  pass?: boolean;
}

export function reportLines(r: BenchResults): string[] {
  const rows: Row[] = [
    {
      what: 'emails/s, pipeline (first command → last accept)',
      figure: `${r.throughput.rate.toFixed(0)} /s (${r.throughput.emails} in ${r.throughput.seconds.toFixed(1)} s; commands ${r.throughput.commandRate.toFixed(0)} /s)`,
    },
    {
      what: 'emails/s, raw pooled nodemailer (pool 5)',
      figure: `${r.raw.rate.toFixed(0)} /s (${r.raw.emails} in ${r.raw.seconds.toFixed(1)} s)`,
    },
    {
      what: 'pipeline / raw nodemailer',
      figure: r.ratio.toFixed(2),
      target: '≥ 0.7',
      pass: r.ratio >= 0.7 && r.throughput.missing === 0,
    },
    {
      what: `committed → accepted p50, steady ${r.steady.ratePerSecond.toFixed(0)}/s`,
      figure: ms(r.steady.p50),
    },
    {
      what: `committed → accepted p99, steady ${r.steady.ratePerSecond.toFixed(0)}/s`,
      figure: `${ms(r.steady.p99)} (p90 ${ms(r.steady.p90)}, max ${ms(r.steady.max)}, ${r.steady.emails} emails)`,
      target: '≤ 100 ms',
      pass: r.steady.p99 <= 100 && r.steady.missing === 0,
    },
    {
      what: '  command (HTTP) p50 / p99 in that phase',
      figure: `${ms(r.steady.commandP50)} / ${ms(r.steady.commandP99)} (driver behind schedule ≤ ${ms(r.steady.behindMs)})`,
    },
  ];
  for (const name of ['accounts', 'notifications'] as const) {
    const f = r.services[name];
    rows.push({
      what: `${name}: peak RSS (VmHWM, whole run)`,
      figure: `${mb(f.peakRss)} (idle ${mb(f.idleRss)})`,
      target: '≤ 120 MB',
      pass: f.peakRss <= 120 * 2 ** 20,
    });
    rows.push({
      what: `${name}: process start → /readyz 200`,
      figure: `${s(f.startToReadyMs)} (/healthz 200 after ${s(f.startToLiveMs)})`,
      target: '≤ 1.5 s',
      pass: f.startToReadyMs <= 1500,
    });
  }
  if (r.npmStart && 'error' in r.npmStart) {
    rows.push({ what: 'npm start', figure: r.npmStart.error, target: '≤ 6 s', pass: false });
  } else if (r.npmStart) {
    rows.push({
      what: 'npm start: idle RSS (process tree)',
      figure: `${mb(r.npmStart.idleTreeRss)} (${r.npmStart.processes} processes; product's node ${mb(r.npmStart.idleMainRss)})`,
      target: '≤ 400 MB',
      pass: r.npmStart.idleTreeRss <= 400 * 2 ** 20,
    });
    rows.push({
      what: 'npm start: start → both /readyz 200',
      figure: s(r.npmStart.startToReadyMs),
      target: '≤ 6 s',
      pass: r.npmStart.startToReadyMs <= 6000,
    });
  } else {
    rows.push({ what: 'npm start', figure: 'not measured (--no-npm-start)' });
  }
  const width = Math.max(...rows.map((row) => row.what.length));
  const figureWidth = Math.max(...rows.map((row) => row.figure.length));
  const lines = [
    '',
    `bench:pipeline — ${r.options.n} commands (POST /users, origin site-admin → one set-password email each), ${r.options.concurrency} concurrent clients`,
    '',
    ...rows.map((row) =>
      `  ${row.what.padEnd(width)}  ${row.figure.padEnd(figureWidth)}  ${row.target ? `${row.target.padEnd(9)} ${row.pass ? 'PASS' : 'MISS'}` : ''}`.trimEnd(),
    ),
    '',
  ];
  const e = r.exactlyOnce;
  lines.push(
    `  exactly once: ${e.commands} commands, ${e.committed} committed, ${e.receivedOnce} emails received once, ${e.duplicates} duplicated, ${e.missing} missing, ${e.duplicateMessageIds} repeated Message-IDs`,
  );
  const cpuLine = (label: string, used: Record<string, number>, seconds: number) =>
    `  CPU during ${label} (${seconds.toFixed(1)} s wall): ${Object.entries(used)
      .map(([k, v]) => `${k} ${v.toFixed(1)} s (${((v / seconds) * 100).toFixed(0)}%)`)
      .join(', ')}`;
  lines.push(cpuLine('the burst', r.throughput.cpuSeconds, r.throughput.seconds));
  lines.push(cpuLine('raw nodemailer', r.raw.cpuSeconds, r.raw.seconds));
  const stages = r.steady.stages;
  if (typeof stages === 'string') lines.push(`  steady latency by stage: ${stages}`);
  else {
    lines.push('  steady latency by stage (p50 / p99):');
    for (const st of stages) lines.push(`    ${st.stage.padEnd(44)} ${ms(st.p50)} / ${ms(st.p99)}`);
  }
  lines.push(
    `  machine: load average ${r.loadAverage.map((l) => l.toFixed(2)).join(' ')} at the end; plain \`node -e 0\` took ${ms(r.nodeStartMs)} (idle: ~40-60 ms)`,
  );
  lines.push(
    `  settings: ${Object.entries(r.settings)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  for (const f of r.failures) lines.push(`  failed command: ${f}`);
  return lines;
}
