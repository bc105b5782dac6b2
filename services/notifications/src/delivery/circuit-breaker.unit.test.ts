import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyReply } from '../smtp/classify.ts';
import { RelayBreaker } from './circuit-breaker.ts';

const t = (s: number) => new Date(Date.UTC(2026, 11, 1) + s * 1000);
const auth = classifyReply({ reply: '535 5.7.8 Authentication credentials invalid', step: 'auth' });
const refused = classifyReply({ step: 'connect' });
const unknownUser = classifyReply({ reply: '550 5.1.1 User unknown', step: 'envelope' });
const greylisted = classifyReply({ reply: '450 4.2.0 Greylisted', step: 'envelope' });

describe('RelayBreaker', () => {
  it('pauses at once on a failure that is the sender’s, with the reason', () => {
    const b = new RelayBreaker();
    assert.equal(b.failed(auth, 'mail: 535 5.7.8 Authentication credentials invalid', t(0), 'cfg'), true);
    const s = b.state();
    assert.equal(s.state, 'paused');
    assert.equal(s.state === 'paused' && s.cause, 'sender');
    assert.match(s.state === 'paused' ? s.reason : '', /535 5\.7\.8/);
    assert.equal(b.coveredByPause(auth), true);
    assert.equal(b.coveredByPause(unknownUser), false);
  });

  it('pauses after three tries in a row without a reply; a reply in between resets the run', () => {
    const b = new RelayBreaker();
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(0), 'cfg'), false);
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(1), 'cfg'), false);
    assert.equal(b.failed(greylisted, '450', t(2), 'cfg'), false);
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(3), 'cfg'), false);
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(4), 'cfg'), false);
    b.succeeded();
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(5), 'cfg'), false);
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(6), 'cfg'), false);
    assert.equal(b.failed(refused, 'ECONNREFUSED', t(7), 'cfg'), true);
    assert.equal(b.failed(unknownUser, '550', t(8), 'cfg'), false, 'never pauses on a recipient');
  });

  it('probes an unreachable relay every 5 s for 5 minutes, then backs off to 60 s', () => {
    const b = new RelayBreaker();
    for (let i = 0; i < 3; i++) b.failed(refused, 'ECONNREFUSED', t(0), 'cfg');
    assert.equal(b.takeProbe(t(4.9)), false);
    const gaps: number[] = [];
    let now = 5;
    while (now < 600) {
      assert.equal(b.takeProbe(t(now)), true, `probe due at ${now}`);
      assert.equal(b.takeProbe(t(now)), false, 'one probe at a time');
      b.probeFailed('ECONNREFUSED', t(now));
      const s = b.state();
      const next = s.state === 'paused' ? (s.nextProbeAt.getTime() - t(0).getTime()) / 1000 : Number.NaN;
      gaps.push(next - now);
      now = next;
    }
    assert.ok(gaps.slice(0, 50).every((g) => g === 5));
    assert.deepEqual(gaps.slice(-2), [60, 60]);
    assert.equal(b.probeSucceeded(t(now)), true);
    assert.equal(b.isPaused(), false);
  });

  it('backs off probes of a relay that refuses the login: 5, 10, 20, 40, 60 s', () => {
    const b = new RelayBreaker();
    b.failed(auth, '535', t(0), 'cfg');
    const nextAt: number[] = [];
    let now = 5;
    for (let i = 0; i < 5; i++) {
      assert.equal(b.takeProbe(t(now)), true);
      b.probeFailed('535', t(now));
      const s = b.state();
      const next = s.state === 'paused' ? (s.nextProbeAt.getTime() - t(0).getTime()) / 1000 : Number.NaN;
      nextAt.push(next - now);
      now = next;
    }
    assert.deepEqual(nextAt, [10, 20, 40, 60, 60]);
  });

  it('resumes when the sending settings change or a test email got through', () => {
    const b = new RelayBreaker();
    b.failed(auth, '535', t(0), 'old');
    assert.equal(b.configIs('old', t(1)), false);
    assert.equal(b.isPaused(), true);
    assert.equal(b.configIs('new', t(2)), true);
    assert.equal(b.isPaused(), false);
    b.failed(auth, '535', t(3), 'new');
    assert.equal(b.relayAnswered(t(4)), true);
    assert.equal(b.relayAnswered(t(5)), false);
  });
});
