import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  basic,
  createKey,
  type Harness,
  linkCode,
  noSmtpSite,
  PASSWORD,
  smtpSite,
  startHarness,
  types,
  userWithKey,
} from '../testing/harness.ts';

const db = testDatabaseKind();
const NEW_PASSWORD = 'a brand new passphrase';

describe(`set-password and reset links (${db})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let dave: { id: string };
  before(async () => {
    h = await startHarness({ site: smtpSite });
    admin = await userWithKey(h, 'admin');
    const res = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'dave', email: 'dave@example.com' },
    });
    dave = res.json();
  });
  after(() => h.close());

  it('GET /password-reset describes a set-password link (JSON) and shows a form to a browser, without using it', async () => {
    const code = await linkCode(h, dave.id, 'PasswordSetLinkRequested');
    const json = await h.app.inject({
      method: 'GET',
      url: `/password-reset?code=${encodeURIComponent(code)}`,
    });
    assert.equal(json.statusCode, 200);
    assert.equal(json.json().kind, 'set-password');
    assert.equal(json.json().email, 'dave@example.com');
    const page = await h.app.inject({
      method: 'GET',
      url: `/password-reset?code=${encodeURIComponent(code)}`,
      headers: { accept: 'text/html' },
    });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /Set your password/);
    assert.ok(!page.body.includes(code), 'the page reads the code from its URL; it does not echo it');
    const bogus = await h.app.inject({ method: 'GET', url: '/password-reset?code=bogus' });
    assert.equal(bogus.statusCode, 400);
    assert.equal(bogus.json().field, 'code');
  });

  it('POST /password-reset with a set-password code sets the password and verifies the address, once', async () => {
    const code = await linkCode(h, dave.id, 'PasswordSetLinkRequested');
    const short = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: 'short' },
    });
    assert.equal(short.statusCode, 400);
    assert.equal(short.json().field, 'password');
    const res = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: NEW_PASSWORD },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().userId, dave.id);
    const events = await h.eventStore.readStream(dave.id);
    assert.deepEqual(types(events), [
      'UserCreated',
      'PasswordSetLinkRequested',
      'PasswordChanged',
      'EmailVerified',
    ]);
    assert.deepEqual(events[2]?.data, { via: 'set-password-link' });
    assert.deepEqual(events[3]?.data, { email: 'dave@example.com', method: 'set-password-link' });
    assert.ok(!JSON.stringify(events).includes(NEW_PASSWORD));
    const { secret } = await createKey(h, 'dave@example.com', 'first', NEW_PASSWORD);
    const me = await h.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `token ${secret}` },
    });
    assert.equal(me.json().hasPassword, true);
    assert.equal(me.json().emails[0].verified, true);
    const again = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: NEW_PASSWORD },
    });
    assert.equal(again.statusCode, 400);
    assert.equal(again.json().code, 'invalid-link');
  });

  it('POST /password-reset-requests emits a reset link for a verified address; the reset works and uses up the link', async () => {
    const before = (await allEvents(h)).length;
    const res = await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'Dave@Example.com' },
    });
    assert.equal(res.statusCode, 202);
    await h.app.accounts.idle(); // the reset is done after the answer
    const appended = (await allEvents(h)).slice(before);
    assert.deepEqual(appended, [{ type: 'PasswordResetRequested', stream_id: dave.id }]);
    const code = await linkCode(h, dave.id, 'PasswordResetRequested');
    const reset = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: 'yet another passphrase' },
    });
    assert.equal(reset.statusCode, 200);
    assert.deepEqual((await h.eventStore.readStream(dave.id)).at(-1)?.data, { via: 'reset-link' });
    const old = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('dave', NEW_PASSWORD) },
      payload: { name: 'old' },
    });
    assert.equal(old.statusCode, 401);
    await createKey(h, 'dave', 'new', 'yet another passphrase');
  });

  it('a reset link expires after 4 hours', async () => {
    h.clock.advance(60_000); // past the per-address throttle of the previous test's request
    const before = (await allEvents(h)).length;
    await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'dave@example.com' },
    });
    await h.app.accounts.idle();
    assert.equal((await allEvents(h)).length, before + 1);
    const code = await linkCode(h, dave.id, 'PasswordResetRequested');
    h.clock.advance(4 * 3600_000 + 1000);
    const res = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: NEW_PASSWORD },
    });
    assert.equal(res.statusCode, 400);
  });

  it('an unknown or unverified address gets the same 202 and nothing is appended', async () => {
    const before = (await allEvents(h)).length;
    for (const email of ['nobody@example.com', 'admin@example.com']) {
      const res = await h.app.inject({ method: 'POST', url: '/password-reset-requests', payload: { email } });
      assert.equal(res.statusCode, 202);
    }
    await h.app.accounts.idle();
    assert.equal((await allEvents(h)).length, before);
  });

  it('refused with 403 on a single-sign-on site (no builtin entry), and 409 without SMTP', async () => {
    h.siteConfig.set({ ...smtpSite, 'auth.providers': [{ type: 'saml' }] });
    const before = (await allEvents(h)).length;
    for (const email of ['dave@example.com', 'nobody@example.com']) {
      const res = await h.app.inject({ method: 'POST', url: '/password-reset-requests', payload: { email } });
      assert.equal(res.statusCode, 403);
      assert.equal(res.json().code, 'builtin-auth-disabled');
    }
    h.siteConfig.set(noSmtpSite);
    const noSmtp = await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'dave@example.com' },
    });
    assert.equal(noSmtp.statusCode, 409);
    assert.equal(noSmtp.json().code, 'smtp-not-configured');
    assert.equal((await allEvents(h)).length, before);
    h.siteConfig.set(smtpSite);
  });

  it('on a single-sign-on site an admin-created user gets a verification link, never a set-password link', async () => {
    h.siteConfig.set({ ...smtpSite, 'auth.providers': [{ type: 'github' }] });
    const res = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'erin', email: 'erin@example.com' },
    });
    assert.equal(res.statusCode, 201);
    assert.deepEqual(types(await h.eventStore.readStream(res.json().id)), [
      'UserCreated',
      'EmailVerificationRequested',
    ]);
    h.siteConfig.set(smtpSite);
  });

  it('a set-password link is refused (403) once builtin auth is turned off, and stays unused', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users',
      headers: admin.auth,
      payload: { username: 'fay', email: 'fay@example.com' },
    });
    const fay = res.json();
    const code = await linkCode(h, fay.id, 'PasswordSetLinkRequested');
    h.siteConfig.set({ ...smtpSite, 'auth.providers': [{ type: 'github' }] });
    const refused = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: PASSWORD },
    });
    assert.equal(refused.statusCode, 403);
    h.siteConfig.set(smtpSite);
    const ok = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code, password: PASSWORD },
    });
    assert.equal(ok.statusCode, 200, 'the refused attempt did not use the link up');
  });

  it('PUT /users/:id/password changes your own password with the current one; other links die', async () => {
    const user = await userWithKey(h, 'gwen');
    await h.app.inject({
      method: 'PUT',
      url: `/users/${user.id}/emails/gwen@example.com/verified`,
      headers: admin.auth,
      payload: { verified: true },
    });
    await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'gwen@example.com' },
    });
    await h.app.accounts.idle();
    const resetCode = await linkCode(h, user.id, 'PasswordResetRequested');
    const url = '/users/me/password';
    const wrong = await h.app.inject({
      method: 'PUT',
      url,
      headers: user.auth,
      payload: { currentPassword: 'not it at all', newPassword: NEW_PASSWORD },
    });
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json().field, 'currentPassword');
    const before = (await allEvents(h)).length;
    const ok = await h.app.inject({
      method: 'PUT',
      url,
      headers: user.auth,
      payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
    });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual((await allEvents(h)).slice(before), [{ type: 'PasswordChanged', stream_id: user.id }]);
    assert.deepEqual((await h.eventStore.readStream(user.id)).at(-1)?.data, { via: 'user' });
    await createKey(h, 'gwen', 'after-change', NEW_PASSWORD);
    const reset = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code: resetCode, password: PASSWORD },
    });
    assert.equal(reset.statusCode, 400, 'the reset link sent before the change is dead');
    const someoneElse = await h.app.inject({
      method: 'PUT',
      url: `/users/${user.id}/password`,
      headers: admin.auth,
      payload: { currentPassword: NEW_PASSWORD, newPassword: PASSWORD },
    });
    assert.equal(someoneElse.statusCode, 403);
    const noAuth = await h.app.inject({
      method: 'PUT',
      url,
      payload: { currentPassword: PASSWORD, newPassword: NEW_PASSWORD },
    });
    assert.equal(noAuth.statusCode, 401);
  });
});
