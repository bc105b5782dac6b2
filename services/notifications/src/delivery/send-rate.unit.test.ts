import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SendRate } from './send-rate.ts';

describe('send rate', () => {
  test('without a cap or a pause, every send may start at once', () => {
    const r = new SendRate();
    r.started(1000);
    assert.equal(r.delay(1000, undefined), 0);
  });

  test('spaces sends 1000 / maxPerSecond ms apart, counted from the last start', () => {
    const r = new SendRate();
    assert.equal(r.delay(1000, 20), 0);
    r.started(1000);
    assert.equal(r.delay(1000, 20), 50);
    assert.equal(r.delay(1030, 20), 20);
    assert.equal(r.delay(1050, 20), 0);
    // a lower rate set live applies to the next send
    assert.equal(r.delay(1050, 2), 450);
    r.started(1500);
    assert.equal(r.delay(1600, 0.5), 1900);
  });

  test('a throttling reply pauses every send; the pause doubles while it persists, up to the maximum', () => {
    const r = new SendRate({ pauseBaseMs: 1000, pauseMaxMs: 3000 });
    assert.deepEqual(r.throttled(10_000), { resumesAt: 11_000, pauseMs: 1000 });
    assert.equal(r.delay(10_000, undefined), 1000);
    // replies to sends started before the pause do not lengthen it
    assert.deepEqual(r.throttled(10_500), { resumesAt: 11_000, pauseMs: 0 });
    assert.equal(r.delay(11_000, undefined), 0);
    assert.equal(r.throttled(11_100).resumesAt, 13_100);
    assert.equal(r.throttled(13_200).resumesAt, 16_200);
    assert.equal(r.throttled(16_300).resumesAt, 19_300, 'capped at pauseMaxMs');
  });

  test('a success resets the growth; the cap still applies after a pause', () => {
    const r = new SendRate({ pauseBaseMs: 1000, pauseMaxMs: 60_000 });
    r.throttled(0);
    r.throttled(1000);
    r.succeeded();
    assert.equal(r.throttled(5000).resumesAt, 6000);
    r.started(6000);
    assert.equal(r.delay(6000, 10), 100);
  });
});
