/**
 * The chaos suite's short version in `npm test` (production build), 100 emails a row, two rows:
 * notifications SIGKILLed with messages in SMTP DATA and started again at once (live < 2 s,
 * delivering again < 40 s, the dead instance's claims back after their 15 s lease, duplicates
 * only in the crash's at-least-once window), and poison messages, redeliveries and 10 % of 550s
 * on one stack (dead-lettered, no second email, none retried). `npm run chaos` runs every row
 * at ~2,000 emails.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runChaos } from './suite.ts';

describe('chaos suite (quick)', () => {
  it('loses nothing and duplicates nothing outside the window under each fault', {
    timeout: 300_000,
  }, async () => {
    const result = await runChaos({ quick: true, only: /SIGKILL in SMTP DATA|poison/i });
    console.log(result.table);
    assert.equal(result.rows.length, 2, `ran ${result.rows.length} scenarios`);
    for (const row of result.rows) assert.deepEqual(row.failures, [], row.scenario);
  });
});
