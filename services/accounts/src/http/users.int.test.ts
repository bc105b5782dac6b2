import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  type Harness,
  noSmtpSite,
  PASSWORD,
  signUp,
  smtpSite,
  startHarness,
  types,
  userWithKey,
} from '../testing/harness.ts';

const db = testDatabaseKind();

describe(`POST /sign-up (${db})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ site: smtpSite });
  });
  after(() => h.close());

  it('with SMTP: the address is unverified, a verification is requested, and the first user is site admin', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'alice', email: 'Alice@Example.com', password: PASSWORD, displayName: 'Alice' },
    });
    assert.equal(res.statusCode, 201);
    const user = res.json();
    assert.equal(res.headers.location, `/users/${user.id}`);
    assert.equal(user.username, 'alice');
    assert.equal(user.displayName, 'Alice');
    assert.equal(user.siteAdmin, true);
    assert.equal(user.origin, 'builtin-signup');
    assert.equal(user.hasPassword, true);
    assert.equal(user.primaryEmail, 'alice@example.com');
    assert.deepEqual(
      user.emails.map((e: { email: string; verified: boolean; primary: boolean }) => [
        e.email,
        e.verified,
        e.primary,
      ]),
      [['alice@example.com', false, true]],
    );
    const events = await h.eventStore.readStream(user.id);
    assert.deepEqual(types(events), ['UserCreated', 'EmailVerificationRequested']);
    assert.deepEqual(events[0]?.data, {
      username: 'alice',
      displayName: 'Alice',
      email: 'alice@example.com',
      emailVerified: false,
      origin: 'builtin-signup',
      authProvider: { type: 'builtin' },
      siteAdmin: true,
    });
    assert.equal(user.version, 2);
    // The password is in no event, not even hashed.
    assert.ok(!JSON.stringify(events).includes(PASSWORD));
    assert.ok(!JSON.stringify(events).includes('scrypt'));
    const { rows } = await h.db.query<{ hash: string }>('SELECT hash FROM passwords WHERE user_id = $1', [
      user.id,
    ]);
    assert.match(rows[0]?.hash ?? '', /^scrypt\$/);
  });

  it('a later user is not site admin', async () => {
    const bob = await signUp(h, 'bob');
    assert.equal(bob.siteAdmin, false);
  });

  it('400 naming the field: a malformed address, a short password, a bad username, an unknown field, a missing field', async () => {
    const before = (await allEvents(h)).length;
    const cases: [Record<string, unknown>, string][] = [
      [{ username: 'carol', email: 'not-an-address', password: PASSWORD }, 'email'],
      [{ username: 'carol', email: 'carol@example.com', password: 'short' }, 'password'],
      [{ username: '-carol', email: 'carol@example.com', password: PASSWORD }, 'username'],
      [{ username: 'carol', email: 'carol@example.com', password: PASSWORD, admin: true }, 'admin'],
      [{ username: 'carol', password: PASSWORD }, 'email'],
    ];
    for (const [payload, field] of cases) {
      const res = await h.app.inject({ method: 'POST', url: '/sign-up', payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/);
      const problem = res.json();
      assert.equal(problem.field, field, JSON.stringify(problem));
      assert.equal(problem.status, 400);
      assert.ok(problem.detail.includes(field));
      assert.ok(!res.body.includes(PASSWORD));
    }
    const malformed = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      headers: { 'content-type': 'application/json' },
      payload: '{"username":',
    });
    assert.equal(malformed.statusCode, 400);
    assert.equal((await allEvents(h)).length, before, 'nothing appended');
  });

  it('409 for a taken username (any case) or address, naming the field, with nothing written', async () => {
    const before = await allEvents(h);
    const name = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'ALICE', email: 'other@example.com', password: PASSWORD },
    });
    assert.equal(name.statusCode, 409);
    assert.equal(name.json().field, 'username');
    assert.equal(name.json().code, 'username-taken');
    const email = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'alice2', email: 'ALICE@example.com', password: PASSWORD },
    });
    assert.equal(email.statusCode, 409);
    assert.equal(email.json().field, 'email');
    assert.deepEqual(await allEvents(h), before);
  });

  it('two sign-ups racing for one address: one user, the other 409, no half-written stream', async () => {
    const before = (await allEvents(h)).length;
    const results = await Promise.all(
      ['racer1', 'racer2', 'racer3'].map((username) =>
        h.app.inject({
          method: 'POST',
          url: '/sign-up',
          payload: { username, email: 'race@example.com', password: PASSWORD },
        }),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [201, 409, 409]);
    const appended = (await allEvents(h)).slice(before);
    assert.deepEqual(
      appended.map((e) => e.type),
      ['UserCreated', 'EmailVerificationRequested'],
    );
    const { rows } = await h.db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM users WHERE username LIKE 'racer%'`,
    );
    assert.equal(rows[0]?.n, 1);
  });
});

describe(`POST /sign-up without SMTP, and on a single-sign-on site (${db})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ site: noSmtpSite });
  });
  after(() => h.close());

  it('without SMTP the address is recorded as verified and no link is requested', async () => {
    const user = await signUp(h, 'alice');
    const view = await h.app.inject({ method: 'GET', url: `/users/${user.id}` });
    assert.equal(view.statusCode, 401);
    assert.deepEqual(types(await h.eventStore.readStream(user.id)), ['UserCreated']);
    const { rows } = await h.db.query<{ verified_at: Date | null }>(
      'SELECT verified_at FROM user_emails WHERE user_id = $1',
      [user.id],
    );
    assert.notEqual(rows[0]?.verified_at, null);
  });

  it('403 when auth.providers has no builtin entry, nothing written', async () => {
    h.siteConfig.set({ ...smtpSite, 'auth.providers': [{ type: 'github' }] });
    const before = (await allEvents(h)).length;
    const res = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'sso', email: 'sso@example.com', password: PASSWORD },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().code, 'builtin-auth-disabled');
    assert.equal((await allEvents(h)).length, before);
    h.siteConfig.set(noSmtpSite);
  });
});

describe(`POST /users, PUT /external-accounts, GET /users/:id, PUT /users/:id/site-admin (${db})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let member: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    admin = await userWithKey(h, 'admin');
    member = await userWithKey(h, 'member');
  });
  after(() => h.close());

  it('a site admin creates a user through the admin UI flow: unverified, set-password link requested', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'dave', email: 'dave@example.com' },
    });
    assert.equal(res.statusCode, 201);
    const user = res.json();
    assert.equal(user.origin, 'site-admin');
    assert.equal(user.siteAdmin, false);
    assert.equal(user.hasPassword, false);
    assert.equal(user.emails[0].verified, false);
    assert.deepEqual(types(await h.eventStore.readStream(user.id)), [
      'UserCreated',
      'PasswordSetLinkRequested',
    ]);
  });

  it('a user created through the API (origin api) is verified, no link', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'bot', email: 'bot@example.com', origin: 'api', displayName: 'CI bot' },
    });
    assert.equal(res.statusCode, 201);
    const user = res.json();
    assert.equal(user.origin, 'api');
    assert.equal(user.emails[0].verified, true);
    const events = await h.eventStore.readStream(user.id);
    assert.deepEqual(types(events), ['UserCreated']);
    assert.equal((events[0]!.data as { emailVerified: boolean }).emailVerified, true);
  });

  it('401 without credentials, 403 for a non-admin, 409 for a taken name, 400 for a bad origin', async () => {
    const payload = { username: 'erin', email: 'erin@example.com' };
    assert.equal((await h.app.inject({ method: 'POST', url: '/users', payload })).statusCode, 401);
    const forbidden = await h.app.inject({ method: 'POST', url: '/users', headers: member.auth, payload });
    assert.equal(forbidden.statusCode, 403);
    const taken = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'dave', email: 'x@example.com' },
    });
    assert.equal(taken.statusCode, 409);
    const origin = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { ...payload, origin: 'external-provider' },
    });
    assert.equal(origin.statusCode, 400);
    assert.equal(origin.json().field, 'origin');
    const wrongKey = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: { authorization: `token sitemail_${'A'.repeat(43)}` },
      payload,
    });
    assert.equal(wrongKey.statusCode, 401);
    assert.match(wrongKey.headers['www-authenticate'] as string, /token/);
  });

  it('an external-provider user is created verified once, then returned unchanged (idempotent)', async () => {
    const url = '/external-accounts/github/4242';
    const payload = { username: 'octo', email: 'octo@example.com' };
    const first = await h.app.inject({ method: 'PUT', url, headers: admin.auth, payload });
    assert.equal(first.statusCode, 201);
    const user = first.json();
    assert.equal(user.origin, 'external-provider');
    assert.deepEqual(user.authProvider, { type: 'github', externalId: '4242' });
    assert.equal(user.emails[0].verified, true);
    const again = await h.app.inject({ method: 'PUT', url, headers: admin.auth, payload });
    assert.equal(again.statusCode, 200);
    assert.equal(again.json().id, user.id);
    assert.deepEqual(types(await h.eventStore.readStream(user.id)), ['UserCreated']);
  });

  it('two gateway calls racing for a new external account: one user, one 201 and one 200', async () => {
    const url = '/external-accounts/gitlab/99';
    const payload = { username: 'racer', email: 'racer@example.com' };
    const results = await Promise.all(
      [1, 2].map(() => h.app.inject({ method: 'PUT', url, headers: admin.auth, payload })),
    );
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 201]);
    assert.equal(results[0]?.json().id, results[1]?.json().id);
    assert.deepEqual(types(await h.eventStore.readStream(results[0]?.json().id)), ['UserCreated']);
  });

  it('external accounts: 403 for a non-admin, 409 for a taken username, 400 for provider builtin', async () => {
    const payload = { username: 'octo2', email: 'octo2@example.com' };
    assert.equal(
      (
        await h.app.inject({
          method: 'PUT',
          url: '/external-accounts/github/1',
          headers: member.auth,
          payload,
        })
      ).statusCode,
      403,
    );
    const taken = await h.app.inject({
      method: 'PUT',
      url: '/external-accounts/gitlab/7',
      headers: admin.auth,
      payload: { username: 'octo', email: 'new@example.com' },
    });
    assert.equal(taken.statusCode, 409);
    assert.equal(taken.json().field, 'username');
    const builtin = await h.app.inject({
      method: 'PUT',
      url: '/external-accounts/builtin/1',
      headers: admin.auth,
      payload,
    });
    assert.equal(builtin.statusCode, 400);
    assert.equal(builtin.json().field, 'provider');
  });

  it('GET /users/me and /users/:id: yourself or, for site admins, anyone; 403, 404, 401, 400 otherwise', async () => {
    const me = await h.app.inject({ method: 'GET', url: '/users/me', headers: member.auth });
    assert.equal(me.statusCode, 200);
    assert.equal(me.json().id, member.id);
    assert.equal(me.headers.etag, `"${me.json().version}"`);
    assert.equal(
      (await h.app.inject({ method: 'GET', url: `/users/${member.id}`, headers: admin.auth })).statusCode,
      200,
    );
    assert.equal(
      (await h.app.inject({ method: 'GET', url: `/users/${admin.id}`, headers: member.auth })).statusCode,
      403,
    );
    const unknown = await h.app.inject({
      method: 'GET',
      url: '/users/00000000-0000-4000-8000-000000000000',
      headers: admin.auth,
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal((await h.app.inject({ method: 'GET', url: '/users/me' })).statusCode, 401);
    const bad = await h.app.inject({ method: 'GET', url: '/users/nobody', headers: admin.auth });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, 'userId');
  });

  it('PUT /users/:id/site-admin makes and unmakes a site admin, with SiteAdminChanged', async () => {
    const made = await h.app.inject({
      method: 'PUT',
      url: `/users/${member.id}/site-admin`,
      headers: admin.auth,
      payload: { siteAdmin: true },
    });
    assert.equal(made.statusCode, 200);
    assert.equal(made.json().siteAdmin, true);
    const events = await h.eventStore.readStream(member.id);
    assert.deepEqual(events.at(-1)?.data, { siteAdmin: true, changedBy: admin.id });
    // The member's key now carries site admin rights, read from the projection.
    assert.equal(
      (await h.app.inject({ method: 'GET', url: `/users/${admin.id}`, headers: member.auth })).statusCode,
      200,
    );
    const unmade = await h.app.inject({
      method: 'PUT',
      url: `/users/${member.id}/site-admin`,
      headers: admin.auth,
      payload: { siteAdmin: false },
    });
    assert.equal(unmade.json().siteAdmin, false);
    assert.deepEqual(types(await h.eventStore.readStream(member.id)).slice(-2), [
      'SiteAdminChanged',
      'SiteAdminChanged',
    ]);
  });

  it('site-admin: 403 for yourself and for a non-admin, 404 unknown, 409 on a stale If-Match, 400 bad body', async () => {
    const own = await h.app.inject({
      method: 'PUT',
      url: '/users/me/site-admin',
      headers: admin.auth,
      payload: { siteAdmin: false },
    });
    assert.equal(own.statusCode, 403);
    assert.equal(own.json().code, 'cannot-change-own-site-admin');
    assert.equal(
      (
        await h.app.inject({
          method: 'PUT',
          url: `/users/${admin.id}/site-admin`,
          headers: member.auth,
          payload: { siteAdmin: false },
        })
      ).statusCode,
      403,
    );
    assert.equal(
      (
        await h.app.inject({
          method: 'PUT',
          url: '/users/00000000-0000-4000-8000-000000000000/site-admin',
          headers: admin.auth,
          payload: { siteAdmin: true },
        })
      ).statusCode,
      404,
    );
    const current = (
      await h.app.inject({ method: 'GET', url: `/users/${member.id}`, headers: admin.auth })
    ).json();
    const before = (await allEvents(h)).length;
    const stale = await h.app.inject({
      method: 'PUT',
      url: `/users/${member.id}/site-admin`,
      headers: { ...admin.auth, 'if-match': `"${current.version - 1}"` },
      payload: { siteAdmin: true },
    });
    assert.equal(stale.statusCode, 409);
    assert.equal(stale.json().code, 'stale-version');
    assert.equal((await allEvents(h)).length, before);
    const fresh = await h.app.inject({
      method: 'PUT',
      url: `/users/${member.id}/site-admin`,
      headers: { ...admin.auth, 'if-match': `"${current.version}"` },
      payload: { siteAdmin: true },
    });
    assert.equal(fresh.statusCode, 200);
    const bad = await h.app.inject({
      method: 'PUT',
      url: `/users/${member.id}/site-admin`,
      headers: admin.auth,
      payload: { siteAdmin: 'yes' },
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, 'siteAdmin');
  });
});
