import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  type Harness,
  linkCode,
  noSmtpSite,
  smtpSite,
  startHarness,
  types,
  userWithKey,
} from '../testing/harness.ts';

const db = testDatabaseKind();
type View = {
  version: number;
  primaryEmail: string;
  emails: { email: string; verified: boolean; primary: boolean }[];
};
const addresses = (user: View) =>
  user.emails.map((e) => `${e.email}${e.verified ? ' verified' : ''}${e.primary ? ' primary' : ''}`);

describe(`addresses (${db})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let alice: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    admin = await userWithKey(h, 'admin');
    alice = await userWithKey(h, 'alice');
    // Both signed up with SMTP configured: their first addresses start unverified. Verify them, so
    // the counts below start from zero unverified addresses.
    for (const u of [admin, alice]) {
      const res = await h.app.inject({
        method: 'PUT',
        url: `/users/${u.id}/emails/${u.username}@example.com/verified`,
        headers: admin.auth,
        payload: { verified: true },
      });
      assert.equal(res.statusCode, 200);
    }
  });
  after(() => h.close());

  const add = (email: string, auth = alice.auth, headers: Record<string, string> = {}) =>
    h.app.inject({
      method: 'POST',
      url: '/users/me/emails',
      headers: { ...auth, ...headers },
      payload: { email },
    });

  it('POST /users/:id/emails adds an unverified address and requests its verification', async () => {
    const res = await add('Alice@Work.example');
    assert.equal(res.statusCode, 201);
    assert.deepEqual(addresses(res.json()), ['alice@example.com verified primary', 'alice@work.example']);
    const events = await h.eventStore.readStream(alice.id);
    assert.deepEqual(types(events).slice(-2), ['EmailAdded', 'EmailVerificationRequested']);
    assert.deepEqual(events.at(-2)?.data, { email: 'alice@work.example' });
  });

  it('refuses: 409 an address of another user or already yours, 409 a fourth unverified, 400 malformed; nothing written', async () => {
    const before = (await allEvents(h)).length;
    const other = await add('admin@example.com');
    assert.equal(other.statusCode, 409);
    assert.equal(other.json().code, 'email-taken');
    assert.equal(other.json().field, 'email');
    const mine = await add('alice@work.example');
    assert.equal(mine.statusCode, 409);
    assert.equal(mine.json().code, 'email-exists');
    assert.equal((await add('a2@x.example')).statusCode, 201);
    assert.equal((await add('a3@x.example')).statusCode, 201);
    const middle = (await allEvents(h)).length;
    const fourth = await add('a4@x.example');
    assert.equal(fourth.statusCode, 409);
    assert.equal(fourth.json().code, 'too-many-unverified-emails');
    const malformed = await add('not an address');
    assert.equal(malformed.statusCode, 400);
    assert.equal(malformed.json().field, 'email');
    assert.equal((await allEvents(h)).length, middle);
    assert.equal(middle - before, 4);
  });

  it('DELETE /users/:id/emails/:email removes a non-primary address; 409 the primary, 404 unknown', async () => {
    const removed = await h.app.inject({
      method: 'DELETE',
      url: '/users/me/emails/a3%40x.example',
      headers: alice.auth,
    });
    assert.equal(removed.statusCode, 200);
    assert.ok(!addresses(removed.json()).some((a) => a.startsWith('a3@')));
    assert.deepEqual((await h.eventStore.readStream(alice.id)).at(-1)?.data, { email: 'a3@x.example' });
    const primary = await h.app.inject({
      method: 'DELETE',
      url: '/users/me/emails/alice@example.com',
      headers: alice.auth,
    });
    assert.equal(primary.statusCode, 409);
    assert.equal(primary.json().code, 'cannot-remove-primary-email');
    const unknown = await h.app.inject({
      method: 'DELETE',
      url: '/users/me/emails/zz@x.example',
      headers: alice.auth,
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json().field, 'email');
  });

  it('POST .../verification-requests: 429 sent too recently, 202 a minute later, 409 when verified or without SMTP', async () => {
    const url = '/users/me/emails/alice@work.example/verification-requests';
    const tooSoon = await h.app.inject({ method: 'POST', url, headers: alice.auth });
    assert.equal(tooSoon.statusCode, 429);
    assert.equal(tooSoon.json().code, 'sent-too-recently');
    h.clock.advance(61_000);
    const before = (await allEvents(h)).length;
    const ok = await h.app.inject({ method: 'POST', url, headers: alice.auth });
    assert.equal(ok.statusCode, 202);
    assert.deepEqual(
      (await allEvents(h)).slice(before).map((e) => e.type),
      ['EmailVerificationRequested'],
    );
    h.clock.advance(61_000);
    h.siteConfig.set(noSmtpSite);
    const noSmtp = await h.app.inject({ method: 'POST', url, headers: alice.auth });
    assert.equal(noSmtp.statusCode, 409);
    assert.equal(noSmtp.json().code, 'smtp-not-configured');
    h.siteConfig.set(smtpSite);
    const unknown = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails/zz@x.example/verification-requests',
      headers: alice.auth,
    });
    assert.equal(unknown.statusCode, 404);
    const verified = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails/admin@example.com/verification-requests',
      headers: admin.auth,
    });
    assert.equal(verified.statusCode, 409);
    assert.equal(verified.json().code, 'email-already-verified');
  });

  it('GET /-/verify-email verifies the address (JSON), single use; a stale, wrong or expired link is a 400', async () => {
    const code = await linkCode(h, alice.id, 'EmailVerificationRequested');
    const url = `/-/verify-email?code=${encodeURIComponent(code)}&email=alice%40work.example`;
    const wrongEmail = await h.app.inject({
      method: 'GET',
      url: `/-/verify-email?code=${encodeURIComponent(code)}&email=a2%40x.example`,
    });
    assert.equal(wrongEmail.statusCode, 400);
    assert.equal(wrongEmail.json().field, 'code');
    const ok = await h.app.inject({ method: 'GET', url });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().userId, alice.id);
    assert.equal(ok.headers['cache-control'], 'no-store');
    const events = await h.eventStore.readStream(alice.id);
    assert.deepEqual(events.at(-1)?.data, { email: 'alice@work.example', method: 'verification-link' });
    const me = (await h.app.inject({ method: 'GET', url: '/users/me', headers: alice.auth })).json();
    assert.ok(addresses(me).includes('alice@work.example verified'));
    const before = (await allEvents(h)).length;
    const again = await h.app.inject({ method: 'GET', url });
    assert.equal(again.statusCode, 400);
    assert.equal(again.json().code, 'invalid-link');
    assert.equal((await allEvents(h)).length, before);
    const missing = await h.app.inject({ method: 'GET', url: '/-/verify-email?email=alice%40work.example' });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().field, 'code');
  });

  it('a verification link opened in a browser answers a page; an expired link answers a page with 400', async () => {
    const add2 = await add('a5@x.example');
    assert.equal(add2.statusCode, 201);
    const code = await linkCode(h, alice.id, 'EmailVerificationRequested');
    const url = `/-/verify-email?code=${encodeURIComponent(code)}&email=a5%40x.example`;
    h.clock.advance(25 * 3600_000);
    const expired = await h.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
    assert.equal(expired.statusCode, 400);
    assert.match(expired.headers['content-type'] as string, /^text\/html/);
    assert.match(expired.body, /cannot be used/);
    const fresh = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails/a5@x.example/verification-requests',
      headers: alice.auth,
    });
    assert.equal(fresh.statusCode, 202);
    const code2 = await linkCode(h, alice.id, 'EmailVerificationRequested');
    const page = await h.app.inject({
      method: 'GET',
      url: `/-/verify-email?code=${encodeURIComponent(code2)}&email=a5%40x.example`,
      headers: { accept: 'text/html,application/xhtml+xml' },
    });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(page.body, /a5@x\.example is verified/);
  });

  it('a link to an address removed since it was sent no longer works', async () => {
    assert.equal((await add('a6@x.example')).statusCode, 201);
    const code = await linkCode(h, alice.id, 'EmailVerificationRequested');
    await h.app.inject({ method: 'DELETE', url: '/users/me/emails/a6@x.example', headers: alice.auth });
    const res = await h.app.inject({
      method: 'GET',
      url: `/-/verify-email?code=${encodeURIComponent(code)}&email=a6%40x.example`,
    });
    assert.equal(res.statusCode, 400);
  });

  it('PUT /users/:id/primary-email: 409 while unverified (primary email must be verified), 200 once verified', async () => {
    const unverified = await h.app.inject({
      method: 'PUT',
      url: '/users/me/primary-email',
      headers: alice.auth,
      payload: { email: 'a2@x.example' },
    });
    assert.equal(unverified.statusCode, 409);
    assert.equal(unverified.json().code, 'primary-email-must-be-verified');
    assert.equal(unverified.json().detail, 'primary email must be verified');
    const ok = await h.app.inject({
      method: 'PUT',
      url: '/users/me/primary-email',
      headers: alice.auth,
      payload: { email: 'alice@work.example' },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().primaryEmail, 'alice@work.example');
    assert.deepEqual((await h.eventStore.readStream(alice.id)).at(-1)?.data, {
      email: 'alice@work.example',
      previousEmail: 'alice@example.com',
    });
    const unknown = await h.app.inject({
      method: 'PUT',
      url: '/users/me/primary-email',
      headers: alice.auth,
      payload: { email: 'zz@x.example' },
    });
    assert.equal(unknown.statusCode, 404);
  });

  it('PUT .../emails/:email/verified: a site admin sets verified and unverified; 403 for others; If-Match 409', async () => {
    const url = `/users/${alice.id}/emails/a2@x.example/verified`;
    const notAdmin = await h.app.inject({
      method: 'PUT',
      url,
      headers: alice.auth,
      payload: { verified: true },
    });
    assert.equal(notAdmin.statusCode, 403);
    const verified = await h.app.inject({
      method: 'PUT',
      url,
      headers: admin.auth,
      payload: { verified: true },
    });
    assert.equal(verified.statusCode, 200);
    assert.ok(addresses(verified.json()).includes('a2@x.example verified'));
    assert.deepEqual((await h.eventStore.readStream(alice.id)).at(-1)?.data, {
      email: 'a2@x.example',
      method: 'site-admin',
    });
    const stale = await h.app.inject({
      method: 'PUT',
      url,
      headers: { ...admin.auth, 'if-match': `"${verified.json().version - 1}"` },
      payload: { verified: false },
    });
    assert.equal(stale.statusCode, 409);
    const unverified = await h.app.inject({
      method: 'PUT',
      url,
      headers: { ...admin.auth, 'if-match': `"${verified.json().version}"` },
      payload: { verified: false },
    });
    assert.equal(unverified.statusCode, 200);
    assert.ok(addresses(unverified.json()).includes('a2@x.example'));
    assert.deepEqual((await h.eventStore.readStream(alice.id)).at(-1)?.data, {
      email: 'a2@x.example',
      by: admin.id,
    });
    const unknown = await h.app.inject({
      method: 'PUT',
      url: `/users/${alice.id}/emails/zz@x.example/verified`,
      headers: admin.auth,
      payload: { verified: true },
    });
    assert.equal(unknown.statusCode, 404);
  });

  it("403 acting on another user's addresses as a non-admin; 401 without a key", async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: `/users/${admin.id}/emails`,
      headers: alice.auth,
      payload: { email: 'x@y.example' },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(
      (await h.app.inject({ method: 'POST', url: '/users/me/emails', payload: { email: 'x@y.example' } }))
        .statusCode,
      401,
    );
  });
});
