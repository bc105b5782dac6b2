import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import { type Harness, startHarness, userWithKey } from '../testing/harness.ts';

/** The HTTP contract both services share (packages/service-kit): one problem shape, both API-key schemes. */
describe(`one problem+json shape for every error (${testDatabaseKind()})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let member: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness();
    admin = await userWithKey(h, 'admin'); // the first user is the site admin
    member = await userWithKey(h, 'member');
  });
  after(async () => {
    await h.db.query('ALTER TABLE IF EXISTS users_gone RENAME TO users').catch(() => {});
    await h.close();
  });

  const members = (body: Record<string, unknown>) =>
    Object.keys(body)
      .filter((k) => k !== 'field')
      .sort();

  it('400, 401, 403, 404 and 500 have the same members, type /problems/<code> and the request id', async () => {
    const answers = [
      await h.app.inject({ method: 'POST', url: '/sign-up', payload: { username: 'x' } }),
      await h.app.inject({
        method: 'GET',
        url: '/users/me',
        headers: { authorization: 'Bearer sk_not_a_key' },
      }),
      await h.app.inject({ method: 'GET', url: `/users/${admin.id}`, headers: member.auth }),
      await h.app.inject({ method: 'GET', url: '/no-such-route' }),
    ];
    await h.db.query('ALTER TABLE users RENAME TO users_gone');
    answers.push(await h.app.inject({ method: 'GET', url: '/users/me', headers: admin.auth }));
    await h.db.query('ALTER TABLE users_gone RENAME TO users');

    assert.deepEqual(
      answers.map((r) => r.statusCode),
      [400, 401, 403, 404, 500],
    );
    for (const res of answers) {
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const body = res.json();
      assert.deepEqual(members(body), ['code', 'detail', 'requestId', 'status', 'title', 'type'], res.body);
      assert.equal(body.type, `/problems/${body.code}`);
      assert.equal(body.status, res.statusCode);
      assert.equal(body.requestId, res.headers['x-request-id']);
    }
    assert.deepEqual(
      answers.map((r) => r.json().code),
      ['invalid-input', 'unauthenticated', 'forbidden', 'no-route', 'internal'],
    );
    assert.equal(answers[0]!.json().field, 'email');
    assert.equal(answers[0]!.json().detail, 'email is required');
  });

  it('a 401 names every scheme accounts takes', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: 'token nope' },
    });
    assert.equal(res.statusCode, 401);
    const challenge = String(res.headers['www-authenticate']);
    for (const scheme of ['token', 'Bearer', 'Basic'])
      assert.match(challenge, new RegExp(`\\b${scheme} realm=`));
  });

  it('an API key works as Bearer as well as token', async () => {
    for (const authorization of [
      `Bearer ${member.secret}`,
      `token ${member.secret}`,
      `bearer  ${member.secret} `,
    ]) {
      const res = await h.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } });
      assert.equal(res.statusCode, 200, authorization);
      assert.equal(res.json().username, 'member');
    }
  });

  it('two credentials, or a scheme without one, are a 401 naming the problem', async () => {
    const two = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `Bearer ${member.secret} ${member.secret}` },
    });
    assert.equal(two.statusCode, 401);
    assert.equal(two.json().detail, 'send exactly one API key');
    assert.ok(!two.body.includes(member.secret));
  });

  it('answers with security headers; liveness is trivial and readiness checks the database', async () => {
    const live = await h.app.inject({ method: 'GET', url: '/healthz' });
    assert.deepEqual(live.json(), { status: 'ok' });
    assert.equal(live.headers['x-content-type-options'], 'nosniff');
    assert.match(String(live.headers['content-security-policy']), /frame-ancestors 'none'/);
    const ready = await h.app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(ready.statusCode, 200);
    assert.deepEqual(ready.json(), { status: 'ready', checks: { database: { ok: true } } });
    const docs = await h.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(String(docs.headers['content-security-policy']), /script-src 'self'/);
  });
});
