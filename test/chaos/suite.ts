/**
 * The chaos suite: every scenario in turn on one private Postgres and one SMTP sink, each with a
 * fresh Kafka mock cluster and database. `quick` runs the same scenarios with a few hundred
 * events and shorter faults (what `npm test` runs); the full run is the issue's ~2,000 emails per
 * scenario, a broker down 30 s and the SMTP server down 60 s.
 */
import { accountsScenario } from './accounts-scenario.ts';
import { runEmailScenario, type Size } from './harness.ts';
import { startPrivatePostgres } from './postgres.ts';
import { assertBuilt, startSink } from './processes.ts';
import { type Row, table } from './report.ts';
import { emailScenarios, quickMixScenario, share550Scenario } from './scenarios.ts';

export const sizes: Record<'quick' | 'full', Size> = {
  quick: { emails: 100, recipients: 20, users: 40, scale: 0.2, quick: true },
  full: { emails: 2_000, recipients: 200, users: 1_000, scale: 1, quick: false },
};

export interface ChaosOptions {
  quick: boolean;
  /** Only scenarios whose name matches. */
  only?: RegExp;
  log?: (line: string) => void;
}

export async function runChaos(o: ChaosOptions): Promise<{ rows: Row[]; ok: boolean; table: string }> {
  assertBuilt();
  const size = o.quick ? sizes.quick : sizes.full;
  const log = o.log ?? ((l: string) => console.log(l));
  const postgres = await startPrivatePostgres();
  const sink = await startSink();
  const rows: Row[] = [];
  const all: { name: string; run: () => Promise<Row> }[] = [
    { name: 'accounts SIGKILL (relay holder)', run: () => accountsScenario(size, postgres, sink) },
    // Quick: poison, redelivery and 550s share one stack (one row's start-up fewer).
    ...(o.quick
      ? [...emailScenarios.filter((s) => !/poison/.test(s.name)), quickMixScenario]
      : [...emailScenarios, share550Scenario]
    ).map((s) => ({
      name: s.name,
      run: () => runEmailScenario(s, size, postgres, sink),
    })),
  ];
  try {
    for (const s of all.filter((x) => !o.only || o.only.test(x.name))) {
      const started = Date.now();
      log(`chaos: ${s.name} …`);
      const row = await s.run().catch(
        (err: Error): Row => ({
          scenario: s.name,
          eventsIn: 0,
          expected: 0,
          received: 0,
          lost: 0,
          duplicates: 0,
          explained: 0,
          doubled: 0,
          recoverMs: undefined,
          drainedMs: undefined,
          boundMs: 0,
          stalled: '?',
          extra: '',
          failures: [`the scenario broke: ${err.stack ?? err.message}`],
        }),
      );
      rows.push(row);
      log(
        `chaos: ${s.name}: ${row.failures.length ? `FAILED (${row.failures.join('; ')})` : 'ok'} in ${((Date.now() - started) / 1000).toFixed(0)} s`,
      );
    }
  } finally {
    await sink.stop();
    await postgres.stop();
  }
  return { rows, ok: rows.every((r) => r.failures.length === 0), table: table(rows) };
}
