import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { retryDelayMs } from './backoff.ts';

describe('retryDelayMs', () => {
  const options = { baseMs: 1000, maxMs: 10_000, factor: 2 };

  it('grows exponentially per attempt', () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((a) => retryDelayMs(a, options, 0.999999)),
      [1000, 2000, 4000, 8000],
    );
  });

  it('is capped at maxMs', () => {
    assert.equal(retryDelayMs(10, options, 0.999999), 10_000);
    assert.equal(retryDelayMs(1000, options, 0.999999), 10_000);
  });

  it('jitters between half and the whole step', () => {
    assert.equal(retryDelayMs(3, options, 0), 2000);
    assert.equal(retryDelayMs(3, options, 0.5), 3000);
  });
});
