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
  types,
  userWithKey,
  verifyByLink,
} from '../testing/harness.ts';

const db = testDatabaseKind();

describe(`invitations (${db})`, () => {
  let h: Harness;
  let alice: Awaited<ReturnType<typeof userWithKey>>;
  let bob: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    alice = await userWithKey(h, 'alice');
    bob = await userWithKey(h, 'bob');
  });
  after(() => h.close());

  const invite = (payload: Record<string, unknown>, auth = alice.auth) =>
    h.app.inject({ method: 'POST', url: '/invitations', headers: auth, payload });

  it("POST /invitations invites an address to the site, on the inviter's stream", async () => {
    const res = await invite({ email: 'Carol@Example.org' });
    assert.equal(res.statusCode, 201);
    const invitation = res.json();
    assert.equal(invitation.email, 'carol@example.org');
    assert.equal(invitation.organization, null);
    assert.equal(invitation.inviterId, alice.id);
    assert.equal(invitation.inviteeUserId, null);
    const event = (await h.eventStore.readStream(alice.id)).at(-1);
    assert.equal(event?.type, 'UserInvited');
    const data = event?.data as Record<string, unknown>;
    assert.equal(data.invitationId, invitation.id);
    assert.equal(data.inviterUsername, 'alice');
    assert.equal(data.email, 'carol@example.org');
    assert.equal((data.token as { alg: string }).alg, 'A256GCM');
  });

  it('GET /-/invitation shows it (JSON and page) without using it; the invitee signs up with the code, verified', async () => {
    const code = await linkCode(h, alice.id, 'UserInvited');
    const url = `/-/invitation?code=${encodeURIComponent(code)}&email=carol%40example.org`;
    const json = await h.app.inject({ method: 'GET', url });
    assert.equal(json.statusCode, 200);
    assert.equal(json.json().invitation.inviterUsername, 'alice');
    assert.equal(json.json().signUpPath, '/sign-up');
    const page = await h.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
    assert.match(page.body, /alice invited carol@example\.org to this site/);
    const wrongEmail = await h.app.inject({
      method: 'GET',
      url: `/-/invitation?code=${encodeURIComponent(code)}&email=dan%40example.org`,
    });
    assert.equal(wrongEmail.statusCode, 400);

    const signUp = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'carol', email: 'carol@example.org', password: PASSWORD, invitationCode: code },
    });
    assert.equal(signUp.statusCode, 201);
    const carol = signUp.json();
    assert.equal(carol.emails[0].verified, true);
    assert.deepEqual(types(await h.eventStore.readStream(carol.id)), ['UserCreated']);
    const used = await h.app.inject({ method: 'GET', url });
    assert.equal(used.statusCode, 400, 'the invitation is used up');
  });

  it('an invitation code for another address does not verify a sign-up (400, nothing written)', async () => {
    await invite({ email: 'dan@example.org' });
    const code = await linkCode(h, alice.id, 'UserInvited');
    const before = (await allEvents(h)).length;
    const res = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: {
        username: 'mallory',
        email: 'mallory@example.org',
        password: PASSWORD,
        invitationCode: code,
      },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().field, 'code');
    assert.equal((await allEvents(h)).length, before);
  });

  it('invites an existing user who holds the address verified to an organization, naming them', async () => {
    await verifyByLink(h, bob.id, 'bob@example.com');
    const res = await invite({ email: 'bob@example.com', organization: 'acme' });
    assert.equal(res.statusCode, 201);
    assert.equal(res.json().inviteeUserId, bob.id);
    assert.equal(res.json().organization, 'acme');
    const data = (await h.eventStore.readStream(alice.id)).at(-1)?.data as Record<string, unknown>;
    assert.equal(data.inviteeUserId, bob.id);
    assert.equal(data.organization, 'acme');
  });

  it('409 for a pending invitation of the same address to the same place and for your own address; 400; 401', async () => {
    const before = (await allEvents(h)).length;
    const again = await invite({ email: 'bob@example.com', organization: 'acme' });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'already-invited');
    const own = await invite({ email: 'alice@example.com' });
    assert.equal(own.statusCode, 409);
    assert.equal(own.json().code, 'cannot-invite-own-email');
    const bad = await invite({ email: 'bob@example.com', organization: '' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().field, 'organization');
    const anonymous = await h.app.inject({
      method: 'POST',
      url: '/invitations',
      payload: { email: 'x@example.org' },
    });
    assert.equal(anonymous.statusCode, 401);
    assert.equal((await allEvents(h)).length, before);
  });
});
