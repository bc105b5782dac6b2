import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  type Harness,
  linkCode,
  PASSWORD,
  smtpSite,
  startHarness,
  userWithKey,
  verifyByLink,
} from '../testing/harness.ts';

const db = testDatabaseKind();

/**
 * Issue 9 item 3: an invitation is not proof of an address somebody else holds. Who an
 * invitation goes to, what its link proves, and which links die with the address they went through.
 */
describe(`invitations and links as proof of an address (${db})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let mallory: Awaited<ReturnType<typeof userWithKey>>;
  let bob: Awaited<ReturnType<typeof userWithKey>>;
  let vera: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    admin = await userWithKey(h, 'admin');
    mallory = await userWithKey(h, 'mallory');
    await verifyByLink(h, mallory.id, 'mallory@example.com');
    bob = await userWithKey(h, 'bob');
    vera = await userWithKey(h, 'vera');
    await verifyByLink(h, vera.id, 'vera@example.com');
  });
  after(() => h.close());

  const addEmail = (user: { auth: { authorization: string } }, email: string) =>
    h.app.inject({ method: 'POST', url: '/users/me/emails', headers: user.auth, payload: { email } });
  const removeEmail = (user: { auth: { authorization: string } }, email: string) =>
    h.app.inject({ method: 'DELETE', url: `/users/me/emails/${email}`, headers: user.auth });
  const invite = (email: string, organization?: string) =>
    h.app.inject({
      method: 'POST',
      url: '/invitations',
      headers: bob.auth,
      payload: organization ? { email, organization } : { email },
    });
  const lastInvitation = async () => {
    const event = (await h.eventStore.readStream(bob.id)).filter((e) => e.type === 'UserInvited').at(-1);
    return event?.data as { email: string; inviteeUserId?: string };
  };
  const signUpWith = (username: string, email: string, invitationCode: string) =>
    h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username, email, password: PASSWORD, invitationCode },
    });

  it('the reported attack: an invitation to an address someone holds unverified goes to the address, never to that holder', async () => {
    assert.equal((await addEmail(mallory, 'victim@example.net')).statusCode, 201);
    const res = await invite('victim@example.net');
    assert.equal(res.statusCode, 201);
    // No invitee named: notifications mails the invited address itself, not mallory's verified primary.
    assert.equal(res.json().inviteeUserId, null);
    assert.equal((await lastInvitation()).inviteeUserId, undefined);
    assert.equal((await removeEmail(mallory, 'victim@example.net')).statusCode, 200);
    // Only the mailbox of victim@ got the code; whoever signs up with it did prove the address.
    const code = await linkCode(h, bob.id, 'UserInvited');
    const victim = await signUpWith('victim', 'victim@example.net', code);
    assert.equal(victim.statusCode, 201);
    assert.equal(victim.json().emails[0].verified, true);
  });

  it('an invitation to an address held verified names its holder; once they remove the address, the invitation is dead', async () => {
    assert.equal((await addEmail(vera, 'vera@work.example')).statusCode, 201);
    await verifyByLink(h, vera.id, 'vera@work.example');
    const res = await invite('vera@work.example', 'acme');
    assert.equal(res.json().inviteeUserId, vera.id, 'mailed to vera (her verified primary)');
    const code = await linkCode(h, bob.id, 'UserInvited');
    assert.equal((await removeEmail(vera, 'vera@work.example')).statusCode, 200);
    const shown = await h.app.inject({
      method: 'GET',
      url: `/-/invitation?code=${encodeURIComponent(code)}&email=vera%40work.example`,
    });
    assert.equal(shown.statusCode, 400);
    const before = (await allEvents(h)).length;
    // Whoever holds the code (it went to vera's primary) cannot turn it into the address, verified or not.
    const taken = await signUpWith('eve', 'vera@work.example', code);
    assert.equal(taken.statusCode, 400);
    assert.equal(taken.json().code, 'invalid-link');
    assert.equal((await allEvents(h)).length, before);
    const invitation = await h.app.inject({
      method: 'GET',
      url: `/-/invitation?code=${encodeURIComponent(code)}&email=vera%40work.example`,
    });
    assert.equal(invitation.statusCode, 400, 'still dead, and not shown as accepted');
  });

  it('revoking the verification of an address kills the invitations and reset links addressed through it', async () => {
    assert.equal((await addEmail(vera, 'vera@lab.example')).statusCode, 201);
    await verifyByLink(h, vera.id, 'vera@lab.example');
    await invite('vera@lab.example');
    const invitationCode = await linkCode(h, bob.id, 'UserInvited');
    await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'vera@lab.example' },
    });
    await h.app.accounts.idle();
    const resetCode = await linkCode(h, vera.id, 'PasswordResetRequested');
    const revoked = await h.app.inject({
      method: 'PUT',
      url: `/users/${vera.id}/emails/vera@lab.example/verified`,
      headers: admin.auth,
      payload: { verified: false },
    });
    assert.equal(revoked.statusCode, 200);
    const shown = await h.app.inject({
      method: 'GET',
      url: `/-/invitation?code=${encodeURIComponent(invitationCode)}&email=vera%40lab.example`,
    });
    assert.equal(shown.statusCode, 400);
    const reset = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code: resetCode, password: 'a password from a dead link' },
    });
    assert.equal(reset.statusCode, 400);
    assert.equal(reset.json().code, 'invalid-link');
  });

  it('removing an address kills the reset link sent to it', async () => {
    assert.equal((await addEmail(vera, 'vera@old.example')).statusCode, 201);
    await verifyByLink(h, vera.id, 'vera@old.example');
    h.clock.advance(60_000);
    await h.app.inject({
      method: 'POST',
      url: '/password-reset-requests',
      payload: { email: 'vera@old.example' },
    });
    await h.app.accounts.idle();
    const resetCode = await linkCode(h, vera.id, 'PasswordResetRequested');
    assert.equal((await removeEmail(vera, 'vera@old.example')).statusCode, 200);
    const reset = await h.app.inject({
      method: 'POST',
      url: '/password-reset',
      payload: { code: resetCode, password: 'a password from a dead link' },
    });
    assert.equal(reset.statusCode, 400);
  });

  it('an admin un-verifying an address kills the verification links still out for it', async () => {
    assert.equal((await addEmail(vera, 'vera@home.example')).statusCode, 201);
    const code = await linkCode(h, vera.id, 'EmailVerificationRequested');
    await h.app.inject({
      method: 'PUT',
      url: `/users/${vera.id}/emails/vera@home.example/verified`,
      headers: admin.auth,
      payload: { verified: true },
    });
    await h.app.inject({
      method: 'PUT',
      url: `/users/${vera.id}/emails/vera@home.example/verified`,
      headers: admin.auth,
      payload: { verified: false },
    });
    const res = await h.app.inject({
      method: 'GET',
      url: `/-/verify-email?code=${encodeURIComponent(code)}&email=vera%40home.example`,
    });
    assert.equal(res.statusCode, 400, 'the old link does not undo the revocation');
  });
});
