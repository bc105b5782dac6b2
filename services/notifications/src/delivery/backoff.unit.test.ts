import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultBackoff, giveUpOf, retryDelayMs, retryOrGiveUp } from './backoff.ts';

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

describe('giving up by time', () => {
  const created = new Date('2026-12-01T00:00:00Z');
  const h = (n: number) => new Date(created.getTime() + n * 3_600_000);

  it('gives up at the maximum age, or when the link expires if that is sooner', () => {
    assert.deepEqual(giveUpOf(created, undefined, 120), { at: h(120), reason: 'max-age' });
    assert.deepEqual(giveUpOf(created, h(24).toISOString(), 120), { at: h(24), reason: 'link-expired' });
    assert.deepEqual(giveUpOf(created, h(200).toISOString(), 120), { at: h(120), reason: 'max-age' });
  });

  it('retries past the old one-hour window, never later than the give-up time, then gives up', () => {
    const giveUp = giveUpOf(created, undefined, 120);
    // With the default backoff (30 s doubling to a 1 h cap) a delivery keeps being tried for 5 days.
    let at = created;
    let tries = 0;
    for (;;) {
      tries++;
      const next = retryOrGiveUp({
        finishedAt: at,
        attemptsUsed: tries,
        giveUp,
        backoff: defaultBackoff,
        random: 0.999,
      });
      if ('gaveUp' in next) {
        assert.equal(next.gaveUp, 'max-age');
        break;
      }
      assert.ok(next.retryAt > at && next.retryAt <= giveUp.at);
      at = next.retryAt;
    }
    assert.deepEqual(at, giveUp.at, 'the last try is at the give-up time');
    assert.ok(tries > 100 && tries < 140, `tries over 5 days: ${tries}`);
  });

  it('makes the last try of a link email at its expiry (where it is failed link-expired, unsent)', () => {
    const giveUp = giveUpOf(created, h(1).toISOString(), 120);
    const next = retryOrGiveUp({
      finishedAt: h(0.9),
      attemptsUsed: 10,
      giveUp,
      backoff: defaultBackoff,
      random: 0.5,
    });
    assert.deepEqual(next, { retryAt: h(1) });
    assert.deepEqual(
      retryOrGiveUp({ finishedAt: h(1), attemptsUsed: 11, giveUp, backoff: defaultBackoff, random: 0.5 }),
      {
        gaveUp: 'link-expired',
      },
    );
  });
});
