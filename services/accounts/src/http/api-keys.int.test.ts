import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  basic,
  type Harness,
  PASSWORD,
  signUp,
  smtpSite,
  startHarness,
  token,
  userWithKey,
} from '../testing/harness.ts';

const db = testDatabaseKind();

describe(`API keys (${db})`, () => {
  let h: Harness;
  let alice: { id: string };
  let bob: Awaited<ReturnType<typeof userWithKey>>;
  let secret: string;
  let keyId: string;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    alice = await signUp(h, 'alice');
    bob = await userWithKey(h, 'bob');
  });
  after(() => h.close());

  it('the first key comes with the password (Basic); the secret is answered once and stored only hashed', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('alice', PASSWORD) },
      payload: { name: 'CI pipeline' },
    });
    assert.equal(res.statusCode, 201);
    assert.equal(res.headers['cache-control'], 'no-store');
    const body = res.json();
    secret = body.secret;
    keyId = body.key.id;
    assert.match(secret, /^sitemail_[A-Za-z0-9_-]{43}$/);
    assert.equal(body.key.name, 'CI pipeline');
    assert.equal(body.key.createdBy, alice.id);
    const event = (await h.eventStore.readStream(alice.id)).at(-1);
    assert.equal(event?.type, 'ApiKeyCreated');
    assert.deepEqual(event?.data, {
      keyId,
      name: 'CI pipeline',
      createdBy: alice.id,
      secretSha256: apiKeySecretSha256(secret),
    });
    const { rows } = await h.db.query('SELECT * FROM api_keys WHERE id = $1', [keyId]);
    assert.ok(!JSON.stringify(rows).includes(secret.slice('sitemail_'.length)));
    const all = await h.db.query('SELECT data::text AS data FROM events');
    assert.ok(!all.rows.some((r) => String(r.data).includes(secret.slice('sitemail_'.length))));
  });

  it('the key authenticates (token and the alias Bearer); login by address works too', async () => {
    for (const authorization of [token(secret), `Bearer ${secret}`]) {
      const me = await h.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } });
      assert.equal(me.statusCode, 200);
      assert.equal(me.json().id, alice.id);
    }
    const byEmail = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('alice@example.com', PASSWORD) },
      payload: { name: 'laptop' },
    });
    assert.equal(byEmail.statusCode, 201);
  });

  it('GET /users/:id/api-keys lists keys without secrets', async () => {
    const res = await h.app.inject({
      method: 'GET',
      url: '/users/me/api-keys',
      headers: { authorization: token(secret) },
    });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(
      res.json().keys.map((k: { name: string; revokedAt: string | null }) => [k.name, k.revokedAt]),
      [
        ['CI pipeline', null],
        ['laptop', null],
      ],
    );
    assert.ok(!res.body.includes(secret));
    assert.ok(!res.body.includes('secret'));
  });

  it('401: wrong password, unknown user, password on a route that takes only keys, malformed header', async () => {
    const wrong = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('alice', 'not the password') },
      payload: { name: 'x' },
    });
    assert.equal(wrong.statusCode, 401);
    assert.ok(!wrong.body.includes('not the password'));
    const unknown = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('nobody', PASSWORD) },
      payload: { name: 'x' },
    });
    assert.equal(unknown.statusCode, 401);
    const basicElsewhere = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: basic('alice', PASSWORD) },
    });
    assert.equal(basicElsewhere.statusCode, 401);
    const scheme = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: 'Digest abc' },
    });
    assert.equal(scheme.statusCode, 401);
    const noAuth = await h.app.inject({ method: 'POST', url: '/users/me/api-keys', payload: { name: 'x' } });
    assert.equal(noAuth.statusCode, 401);
  });

  it('409 for a second active key with the same name, 400 for a blank name, 403 for keys of another user', async () => {
    const dup = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: token(secret) },
      payload: { name: 'CI pipeline' },
    });
    assert.equal(dup.statusCode, 409);
    assert.equal(dup.json().field, 'name');
    const blank = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: token(secret) },
      payload: { name: '   ' },
    });
    assert.equal(blank.statusCode, 400);
    assert.equal(blank.json().field, 'name');
    const other = await h.app.inject({
      method: 'GET',
      url: `/users/${alice.id}/api-keys`,
      headers: bob.auth,
    });
    assert.equal(other.statusCode, 403);
    const otherCreate = await h.app.inject({
      method: 'POST',
      url: `/users/${alice.id}/api-keys`,
      headers: bob.auth,
      payload: { name: 'sneaky' },
    });
    assert.equal(otherCreate.statusCode, 403);
  });

  it('concurrent commands on one user are all decided on fresh state: no lost or duplicated event', async () => {
    const before = (await h.eventStore.readStream(bob.id)).length;
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        h.app.inject({
          method: 'POST',
          url: '/users/me/api-keys',
          headers: bob.auth,
          payload: { name: `parallel-${i}` },
        }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.statusCode),
      [201, 201, 201, 201, 201, 201],
    );
    const events = (await h.eventStore.readStream(bob.id)).slice(before);
    assert.deepEqual(
      events.map((e) => e.position),
      Array.from({ length: 6 }, (_, i) => before + i + 1),
    );
    assert.deepEqual(
      events.map((e) => (e.data as { name: string }).name).sort(),
      Array.from({ length: 6 }, (_, i) => `parallel-${i}`),
    );
    // Same name at once: one key, one 409.
    const same = await Promise.all(
      [1, 2].map(() =>
        h.app.inject({
          method: 'POST',
          url: '/users/me/api-keys',
          headers: bob.auth,
          payload: { name: 'twin' },
        }),
      ),
    );
    assert.deepEqual(same.map((r) => r.statusCode).sort(), [201, 409]);
  });

  it('DELETE revokes: ApiKeyRevoked, the key stops working at once; 404 for unknown or revoked keys', async () => {
    const res = await h.app.inject({
      method: 'DELETE',
      url: `/users/me/api-keys/${keyId}`,
      headers: { authorization: basic('alice', PASSWORD) },
    });
    assert.equal(res.statusCode, 401, 'revoking takes a key, not a password');
    const laptop = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('alice', PASSWORD) },
      payload: { name: 'admin-task' },
    });
    const other = laptop.json().secret as string;
    const revoke = await h.app.inject({
      method: 'DELETE',
      url: `/users/me/api-keys/${keyId}`,
      headers: { authorization: token(other) },
    });
    assert.equal(revoke.statusCode, 204);
    assert.deepEqual((await h.eventStore.readStream(alice.id)).at(-1)?.data, { keyId, revokedBy: alice.id });
    const after = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: token(secret) },
    });
    assert.equal(after.statusCode, 401);
    const list = await h.app.inject({
      method: 'GET',
      url: '/users/me/api-keys',
      headers: { authorization: token(other) },
    });
    assert.notEqual(list.json().keys.find((k: { id: string }) => k.id === keyId).revokedAt, null);
    const before = (await allEvents(h)).length;
    const again = await h.app.inject({
      method: 'DELETE',
      url: `/users/me/api-keys/${keyId}`,
      headers: { authorization: token(other) },
    });
    assert.equal(again.statusCode, 404);
    const unknown = await h.app.inject({
      method: 'DELETE',
      url: '/users/me/api-keys/00000000-0000-4000-8000-000000000000',
      headers: { authorization: token(other) },
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal((await allEvents(h)).length, before);
  });
});

describe(`rate limits (${db})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      site: smtpSite,
      rateLimits: {
        signUp: { max: 2, timeWindow: '1 minute' },
        login: { max: 2, timeWindow: '1 minute' },
        emailRequests: { max: 2, timeWindow: '1 minute' },
      },
    });
  });
  after(() => h.close());

  it('sign-up, password sign-in (key creation) and email requests answer 429 past their limit', async () => {
    await signUp(h, 'u1');
    await signUp(h, 'u2');
    const third = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'u3', email: 'u3@example.com', password: PASSWORD },
    });
    assert.equal(third.statusCode, 429);
    assert.equal(third.json().code, 'rate-limited');
    assert.ok(third.headers['retry-after']);
    const login = () =>
      h.app.inject({
        method: 'POST',
        url: '/users/me/api-keys',
        headers: { authorization: basic('u1', 'wrong password!') },
        payload: { name: 'x' },
      });
    assert.equal((await login()).statusCode, 401);
    assert.equal((await login()).statusCode, 401);
    assert.equal((await login()).statusCode, 429);
    const reset = () =>
      h.app.inject({ method: 'POST', url: '/password-reset-requests', payload: { email: 'u1@example.com' } });
    assert.equal((await reset()).statusCode, 202);
    assert.equal((await reset()).statusCode, 202);
    assert.equal((await reset()).statusCode, 429);
    const { rows } = await h.db.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
    assert.equal(rows[0]?.n, 2);
  });
});
