/**
 * `npm run chaos` (builds first, then this): the full chaos suite, one table row per scenario.
 *   --quick          a few hundred events per scenario, short faults (as `npm test` runs it)
 *   --only=<regex>   only the scenarios whose name matches
 *   --scale          the 1/2/3-instance throughput figures instead (scale.ts)
 * Exits 1 when any row failed.
 */
import { runScale } from './scale.ts';
import { runChaos } from './suite.ts';

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const unknown = args.filter((a) => a !== '--quick' && a !== '--scale' && !a.startsWith('--only='));
if (unknown.length) {
  console.error(`chaos: unknown argument(s) ${unknown.join(' ')} (use --quick, --scale, --only=<regex>)`);
  process.exit(2);
}
const started = Date.now();
if (args.includes('--scale')) {
  const { table } = await runScale({ quick: args.includes('--quick') });
  console.log(`\n${table}`);
  process.exit(0);
}
const result = await runChaos({
  quick: args.includes('--quick'),
  ...(only ? { only: new RegExp(only, 'i') } : {}),
});
console.log(
  `\n${result.table}\n\nchaos suite: ${((Date.now() - started) / 1000).toFixed(0)} s, ${result.ok ? 'all rows ok' : 'FAILED'}`,
);
process.exit(result.ok ? 0 : 1);
