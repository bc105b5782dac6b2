import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type AttemptRecord, beforePasswordAttempt, MAX_LOCK_MS } from './password-attempts.ts';

const t0 = new Date('2026-11-25T10:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);

/** Fails `n` attempts one second apart from `start`, as the store would record them. */
function fail(n: number, start = 0, from: AttemptRecord | null = null) {
  let record = from;
  for (let i = 0; i < n; i++) {
    const d = beforePasswordAttempt(record, at(start + i * 1000));
    assert.ok(d.allowed, `attempt ${i + 1} allowed`);
    record = d.record;
  }
  return record as AttemptRecord;
}

describe('password attempts per account', () => {
  it('allows 5 failures, and the 5th locks the account for a minute', () => {
    const record = fail(5);
    assert.equal(record.failures, 5);
    const locked = beforePasswordAttempt(record, at(10_000));
    assert.deepEqual(locked, { allowed: false, retryAfterMs: 4000 + 60_000 - 10_000 });
  });

  it('lets one attempt through when the lock ends, and a failure then doubles it', () => {
    const record = fail(5);
    const sixth = beforePasswordAttempt(record, at(4000 + 60_000));
    assert.ok(sixth.allowed);
    assert.equal(sixth.record.lockedUntil, at(4000 + 60_000 + 120_000).toISOString());
    const seventh = beforePasswordAttempt(sixth.record, at(4000 + 60_000 + 1000));
    assert.equal(seventh.allowed, false);
  });

  it('caps the lock at an hour and keeps it growing past the failure window', () => {
    let record = fail(5);
    for (let i = 0; i < 10; i++) {
      const until = Date.parse(record.lockedUntil ?? '');
      const d = beforePasswordAttempt(record, new Date(until));
      assert.ok(d.allowed);
      record = d.record;
    }
    assert.equal(record.failures, 15);
    assert.equal(Date.parse(record.lockedUntil ?? '') - Date.parse(record.lastFailureAt), MAX_LOCK_MS);
  });

  it('forgets failures 15 minutes after the last one', () => {
    const record = fail(4);
    const later = beforePasswordAttempt(record, at(3000 + 15 * 60_000));
    assert.ok(later.allowed);
    assert.equal(later.record.failures, 1);
    assert.equal(later.record.lockedUntil, null);
  });
});
