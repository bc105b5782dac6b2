import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import { basic, type Harness, PASSWORD, startHarness, userWithKey } from '../testing/harness.ts';

const db = testDatabaseKind();

/** Issue 9 item 6: repeated password failures slow down per account, whatever the source address. */
describe(`password guessing is throttled per account (${db})`, () => {
  let h: Harness;
  let dora: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness();
    await userWithKey(h, 'admin');
    dora = await userWithKey(h, 'dora');
  });
  after(() => h.close());

  let ip = 0;
  const createKey = (login: string, password: string) =>
    h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic(login, password) },
      payload: { name: `k${ip}` },
      // Every attempt from another address: the per-IP limit alone would never stop this.
      remoteAddress: `198.51.100.${(ip++ % 250) + 1}`,
    });

  it('after 5 failures from 5 addresses, the account answers 429 with retry-after, even to the right password', async () => {
    for (let i = 0; i < 5; i++) {
      assert.equal((await createKey(i % 2 ? 'dora' : 'dora@example.com', 'wrong guess')).statusCode, 401);
    }
    const locked = await createKey('dora', PASSWORD);
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.json().code, 'too-many-password-failures');
    assert.equal(locked.headers['retry-after'], '60');
    assert.ok(!JSON.stringify(locked.json()).includes('dora'), 'the answer does not say whose account');
  });

  it('lets one attempt through when the lock ends; another failure locks it twice as long', async () => {
    h.clock.advance(60_000);
    assert.equal((await createKey('dora', 'wrong again')).statusCode, 401);
    const locked = await createKey('dora', PASSWORD);
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers['retry-after'], '120');
  });

  it('a success resets the count', async () => {
    h.clock.advance(120_000);
    assert.equal((await createKey('dora', PASSWORD)).statusCode, 201);
    for (let i = 0; i < 4; i++) assert.equal((await createKey('dora', 'wrong')).statusCode, 401);
    assert.equal(
      (await createKey('dora', PASSWORD)).statusCode,
      201,
      'four failures after a success: not locked',
    );
  });

  it('an unknown login is throttled the same way (the answers do not tell which logins exist)', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await createKey('nobody', 'guess')).statusCode, 401);
    const locked = await createKey('nobody', 'guess');
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers['retry-after'], '60');
  });

  it('PUT /users/me/password: 5 wrong current passwords lock the account for password checks (429, retry-after)', async () => {
    const change = (currentPassword: string) =>
      h.app.inject({
        method: 'PUT',
        url: '/users/me/password',
        headers: dora.auth,
        payload: { currentPassword, newPassword: 'a brand new passphrase' },
      });
    h.clock.advance(3600_000);
    for (let i = 0; i < 5; i++) assert.equal((await change('not my password')).statusCode, 400);
    const locked = await change(PASSWORD);
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.headers['retry-after'], '60');
    const basicToo = await createKey('dora', PASSWORD);
    assert.equal(basicToo.statusCode, 429, 'one account, one count, whichever route guesses');
  });
});
