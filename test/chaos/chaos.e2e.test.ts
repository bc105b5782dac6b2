/**
 * The chaos suite's short version in `npm test`: the scenarios that need no claim to expire
 * (a SIGKILLed notifications instance's claimed emails wait 120 s; `npm run chaos` runs those,
 * and test/faults/restart.e2e.test.ts covers its restart), with 150 emails each and short faults,
 * so CI proves the harness and the guarantees still hold in a few minutes. Production build.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runChaos } from './suite.ts';

describe('chaos suite (quick)', () => {
  it('loses nothing and duplicates nothing outside the window under each fault', {
    timeout: 480_000,
  }, async () => {
    const result = await runChaos({
      quick: true,
      only: /accounts SIGKILL|broker down|leaders move|421 storm|550|poison/i,
    });
    console.log(result.table);
    assert.ok(result.rows.length >= 6, `ran ${result.rows.length} scenarios`);
    for (const row of result.rows) assert.deepEqual(row.failures, [], row.scenario);
  });
});
