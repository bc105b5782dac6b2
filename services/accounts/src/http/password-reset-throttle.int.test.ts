import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import { type Harness, smtpSite, startHarness, userWithKey, verifyByLink } from '../testing/harness.ts';

const db = testDatabaseKind();

/** Issue 9 item 5: reset emails are throttled per address, and the answer tells nothing by its timing. */
describe(`password reset requests: per-address throttle and timing (${db})`, () => {
  let h: Harness;
  let carol: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    await userWithKey(h, 'admin');
    carol = await userWithKey(h, 'carol');
    await verifyByLink(h, carol.id, 'carol@example.com');
  });
  after(() => h.close());

  const resetsOf = async (userId: string) =>
    (await h.eventStore.readStream(userId)).filter((e) => e.type === 'PasswordResetRequested').length;
  const requestReset = (email: string, ip: string) =>
    h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email },
      remoteAddress: ip,
    });

  it('21 requests from 21 addresses within seconds send one reset email; then one a minute, at most 5 an hour', async () => {
    for (let i = 1; i <= 21; i++) {
      const res = await requestReset('carol@example.com', `198.51.100.${i}`);
      assert.equal(res.statusCode, 202, 'a throttled request answers like any other');
    }
    await h.app.accounts.idle();
    assert.equal(await resetsOf(carol.id), 1);
    for (let minute = 1; minute <= 6; minute++) {
      h.clock.advance(60_000);
      await requestReset('carol@example.com', '203.0.113.7');
      await h.app.accounts.idle();
    }
    assert.equal(await resetsOf(carol.id), 5, 'five within the hour, the sixth minute sends nothing');
    h.clock.advance(55 * 60_000);
    await requestReset('carol@example.com', '203.0.113.7');
    await h.app.accounts.idle();
    assert.equal(await resetsOf(carol.id), 6, 'an hour after the first, one more may go');
  });

  it('answers a known, verified address in the same time as an unknown one', async (t) => {
    const rounds = 200;
    const known: number[] = [];
    const unknown: number[] = [];
    const time = async (email: string, into: number[]) => {
      const start = performance.now();
      const res = await requestReset(email, '192.0.2.1');
      into.push(performance.now() - start);
      assert.equal(res.statusCode, 202);
      // The work after the answer is not part of the answer's time; let it finish between requests.
      await h.app.accounts.idle();
    };
    const before = await resetsOf(carol.id);
    for (let i = 0; i < rounds; i++) {
      // Past the throttle each time, so that every known request does its full work (append, seal).
      h.clock.advance(13 * 60_000);
      if (i % 2 === 0) {
        await time('carol@example.com', known);
        await time(`nobody${i}@example.com`, unknown);
      } else {
        await time(`nobody${i}@example.com`, unknown);
        await time('carol@example.com', known);
      }
    }
    assert.equal((await resetsOf(carol.id)) - before, rounds, 'every known request did send a link');
    // The first few requests warm up the JIT and caches on both paths alike; compare the rest.
    const mean = (xs: number[]) => xs.slice(10).reduce((a, b) => a + b, 0) / (xs.length - 10);
    const [k, u] = [mean(known), mean(unknown)];
    t.diagnostic(
      `mean answer over ${rounds - 10} requests: known ${k.toFixed(2)} ms, unknown ${u.toFixed(2)} ms`,
    );
    assert.ok(Math.abs(k - u) < 2, `known ${k.toFixed(2)} ms vs unknown ${u.toFixed(2)} ms`);
  });
});
