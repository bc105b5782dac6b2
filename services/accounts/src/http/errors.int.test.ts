import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import { type Harness, startHarness, userWithKey } from '../testing/harness.ts';

describe(`errors (${testDatabaseKind()})`, () => {
  let h: Harness;
  let alice: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness();
    alice = await userWithKey(h, 'alice');
  });
  after(async () => {
    await h.db.query('ALTER TABLE IF EXISTS users_gone RENAME TO users').catch(() => {});
    await h.close();
  });

  it('an unknown route is a 404 problem', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/nope?code=secret-ish' });
    assert.equal(res.statusCode, 404);
    assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
    assert.equal(res.json().code, 'no-route');
    assert.ok(!res.body.includes('secret-ish'));
  });

  it('a body that is not JSON, or not an object, is a 400 problem', async () => {
    const bad = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      headers: { 'content-type': 'application/json' },
      payload: '{"username": "x",',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().status, 400);
    const text = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      headers: { 'content-type': 'text/plain' },
      payload: 'hello',
    });
    assert.equal(text.statusCode, 400);
    assert.equal(text.json().field, 'body');
    assert.match(String(text.headers['content-type']), /^application\/problem\+json/);
  });

  it('an internal failure answers a bare 500 problem: no SQL, no stack, no table names', async () => {
    await h.db.query('ALTER TABLE users RENAME TO users_gone');
    const res = await h.app.inject({ method: 'GET', url: '/users/me', headers: alice.auth });
    await h.db.query('ALTER TABLE users_gone RENAME TO users');
    assert.equal(res.statusCode, 500);
    const problem = res.json();
    assert.equal(problem.code, 'internal');
    assert.match(problem.detail, /^internal error; quote request id \S+ when reporting it$/);
    for (const leak of ['users', 'relation', 'SELECT', 'at ', 'api_keys'])
      assert.ok(!res.body.includes(leak), leak);
    const healthy = await h.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(healthy.statusCode, 200);
    assert.deepEqual(healthy.json(), { status: 'ok' });
  });
});
