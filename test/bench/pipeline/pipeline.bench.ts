/**
 * `npm run bench:pipeline [-- --n 5000 | --quick] [--concurrency 16] [--steady-n N] [--no-npm-start]
 *   [--no-build] [--cpu-prof DIR] [--node-args="--flag …"] [--log-level info] [--json FILE] [--logs DIR]`
 *
 * The pipeline as a user sees it: a command committed in accounts → outbox relay → Kafka →
 * notifications → SMTP accepted, with both services as separate processes on their production
 * build, real Postgres (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test), the
 * librdkafka mock cluster and an SMTP sink in its own process. Prints one table with every target
 * of issue 14's "Must show" and PASS/MISS; exits 0 on a MISS (it is a bench), 1 only when the run
 * itself broke. See README.md beside this file for what each figure means and the recorded runs.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { reportLines } from './report.ts';
import { runBench } from './run.ts';

const root = resolve(import.meta.dirname, '../../..');

const { values } = parseArgs({
  options: {
    n: { type: 'string' },
    quick: { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '16' },
    'steady-n': { type: 'string' },
    warmup: { type: 'string' },
    partitions: { type: 'string', default: '6' },
    'log-level': { type: 'string', default: 'info' },
    'no-npm-start': { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    /** Node flags for both services, e.g. "--max-semi-space-size=2" (a knob the image could set). */
    'node-args': { type: 'string' },
    json: { type: 'string' },
    logs: { type: 'string' },
  },
});

function count(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min) {
    console.error(`bench:pipeline: --${name} must be an integer >= ${min}, not "${raw}"`);
    process.exit(2);
  }
  return Number(raw);
}

const n = count('n', values.n, values.quick ? 300 : 5000);
const options = {
  root,
  databaseUrl: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  n,
  ...(values['steady-n'] ? { steadyN: count('steady-n', values['steady-n'], 1) } : {}),
  warmupN: count('warmup', values.warmup, Math.min(100, n), 0),
  concurrency: count('concurrency', values.concurrency, 16),
  partitions: count('partitions', values.partitions, 6),
  logLevel: values['log-level'] ?? 'info',
  npmStart: !values['no-npm-start'],
  ...(values.logs ? { logsDir: resolve(values.logs) } : {}),
  nodeArgs: [
    ...(values['node-args']?.split(/\s+/).filter(Boolean) ?? []),
    ...(values['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(values['cpu-prof'])}`] : []),
  ],
  log: (line: string) => console.log(`bench:pipeline: ${line}`),
};

if (!values['no-build']) {
  options.log('npm run build…');
  const build = spawnSync('npm', ['run', 'build'], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
  if (build.status !== 0) {
    console.error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
    process.exit(1);
  }
}

try {
  const results = await runBench(options);
  for (const line of reportLines(results)) console.log(line);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
  process.exit(0);
} catch (err) {
  console.error(`bench:pipeline failed: ${(err as Error).stack ?? err}`);
  process.exit(1);
}
