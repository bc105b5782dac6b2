import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { describe, it } from 'node:test';
import {
  DEFAULT_SCRYPT_COST,
  hashPassword,
  MAX_CONCURRENT_HASHES,
  type ScryptCost,
  verifyPassword,
} from './passwords.ts';

const PASSWORD = 'correct horse battery staple';
/** Written by the code before this change (N = 2^15, r = 8, p = 3), as rows in `passwords` hold. */
const OLD_DEFAULT_HASH =
  'scrypt$32768$8$3$1EvWNpaPenj_Fz-Cdikrog$8X2laolnXSHLnHpPmi08Tx_7XG_zk0AaP6aBQbsidPU';
const FAST: ScryptCost = { N: 1024, r: 8, p: 1 };

/** Counts scrypt derivations in flight in libuv's pool (created, callback not yet run), whoever starts them. */
function watchDerivations() {
  const pending = new Set<number>();
  let started = 0;
  let max = 0;
  const hook = createHook({
    init(id, type) {
      if (type !== 'SCRYPTREQUEST') return;
      pending.add(id);
      started++;
      max = Math.max(max, pending.size);
    },
    before(id) {
      pending.delete(id);
    },
  }).enable();
  return {
    get inFlight() {
      return pending.size;
    },
    get started() {
      return started;
    },
    get max() {
      return max;
    },
    stop: () => hook.disable(),
  };
}

describe('password hashes', () => {
  it('verifies a hash stored with the old default (N=2^15, r=8, p=3), and refuses a wrong password for it', async () => {
    assert.equal(await verifyPassword(PASSWORD, OLD_DEFAULT_HASH), true);
    assert.equal(await verifyPassword('correct horse battery stapler', OLD_DEFAULT_HASH), false);
  });

  it('hashes with the new default (N=2^13, r=8, p=10) and verifies the round trip', async () => {
    assert.deepEqual(DEFAULT_SCRYPT_COST, { N: 2 ** 13, r: 8, p: 10 });
    const stored = await hashPassword(PASSWORD);
    assert.match(stored, /^scrypt\$8192\$8\$10\$[\w-]{22}\$[\w-]{43}$/);
    assert.equal(await verifyPassword(PASSWORD, stored), true);
    assert.notEqual(await hashPassword(PASSWORD), stored, 'a fresh salt each time');
  });

  it('refuses a wrong password', async () => {
    const stored = await hashPassword(PASSWORD, FAST);
    assert.equal(await verifyPassword('Correct horse battery staple', stored), false);
    assert.equal(await verifyPassword('', stored), false);
  });

  it('still verifies OWASP 64 MiB option (N=2^16, r=8, p=2), the most the cap admits', async () => {
    const stored = await hashPassword(PASSWORD, { N: 2 ** 16, r: 8, p: 2 });
    assert.equal(await verifyPassword(PASSWORD, stored), true);
  });

  it('refuses, without deriving anything, a stored hash asking for more memory or work than the cap', async () => {
    const [, , , , salt, hash] = (await hashPassword(PASSWORD, FAST)).split('$');
    const watch = watchDerivations();
    try {
      for (const [N, r, p] of [
        [2 ** 17, 8, 1], // 128 MiB: OWASP's first option, over the cap
        [2 ** 20, 8, 1], // 1 GiB
        [2 ** 10, 2 ** 20, 1], // 128 GiB through r
        [2 ** 10, 8, 2 ** 20], // 1 GiB of B through p
        [2 ** 13, 8, 1000], // 8 MiB but 100 times the work
        [1000, 8, 1], // N not a power of two
        [0, 8, 1],
      ]) {
        assert.equal(
          await verifyPassword(PASSWORD, `scrypt$${N}$${r}$${p}$${salt}$${hash}`),
          false,
          `${N}/${r}/${p}`,
        );
      }
      for (const malformed of [
        `scrypt$1e3$8$1$${salt}$${hash}`,
        `scrypt$1024$8$1$${salt}$${hash}$extra`,
        `scrypt$1024$8$1$${salt}$${'A'.repeat(200)}`, // a 150-byte key
        `bcrypt$1024$8$1$${salt}$${hash}`,
        '',
      ]) {
        assert.equal(await verifyPassword(PASSWORD, malformed), false, malformed);
      }
      assert.equal(watch.started, 0, 'no derivation was started for a refused hash');
    } finally {
      watch.stop();
    }
    await assert.rejects(hashPassword(PASSWORD, { N: 2 ** 17, r: 8, p: 1 }), RangeError);
  });

  it(`runs at most ${MAX_CONCURRENT_HASHES} derivations at once, queueing the rest of a burst of 10`, async () => {
    assert.equal(MAX_CONCURRENT_HASHES, 2);
    const stored = await hashPassword(PASSWORD, FAST);
    const watch = watchDerivations();
    try {
      const burst = Array.from({ length: 10 }, (_, i) =>
        i % 2 === 0
          ? hashPassword(`${PASSWORD} ${i}`, FAST)
          : verifyPassword(i === 1 ? 'wrong' : PASSWORD, stored),
      );
      assert.equal(watch.inFlight, MAX_CONCURRENT_HASHES, 'the first two start at once, the rest wait');
      const results = await Promise.all(burst);
      assert.equal(watch.started, 10, 'every request of the burst was served, none refused');
      assert.ok(
        watch.max <= MAX_CONCURRENT_HASHES,
        `at most ${MAX_CONCURRENT_HASHES} in flight, saw ${watch.max}`,
      );
      assert.equal(watch.max, MAX_CONCURRENT_HASHES);
      assert.equal(watch.inFlight, 0);
      assert.deepEqual(
        results.filter((_, i) => i % 2 === 1),
        [false, true, true, true, true],
      );
      for (const [i, hash] of results.entries()) {
        if (i % 2 === 0) assert.equal(await verifyPassword(`${PASSWORD} ${i}`, hash as string), true);
      }
    } finally {
      watch.stop();
    }
  });
});
