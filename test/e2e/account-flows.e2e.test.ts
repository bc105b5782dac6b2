/**
 * End to end, from sign-up to mailbox: accounts and notifications as separate processes over
 * Kafka, each with its own database, notifications sending to a real SMTP server. One set of
 * processes for the file; every scenario has users of its own.
 *
 * Each scenario asserts what reached the mailbox and what did not: the delivery log of
 * notifications (every decision it took for the user, sent or suppressed with its reason) must
 * have settled, and the mailbox must hold exactly the emails it says were sent.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  Accounts,
  basic,
  bootstrapAdmin,
  call,
  describeDeliveries,
  expectStatus,
  linkIn,
  Notifications,
  newPerson,
} from './client.ts';
import { type Stack, startStack } from './stack.ts';

let stack: Stack;
let accounts: Accounts;
let notifications: Notifications;
let admin: { id: string; auth: string };

before(async () => {
  stack = await startStack({ label: 'flows' });
  accounts = new Accounts(stack.accounts.url, stack.secrets);
  notifications = new Notifications(stack.notifications.url, () => admin.auth);
  admin = await bootstrapAdmin(accounts, stack.notifications.url);
});

after(async () => {
  await stack?.stop();
});

const site = () => stack.siteConfig['email.senderName'] as string;

describe('end to end: account flows', () => {
  it('builtin sign-up: a verification email reaches the unverified address; its link verifies it', async () => {
    const p = newPerson('signup');
    const user = await accounts.signUp(p);
    assert.deepEqual(
      user.emails.map((e) => [e.email, e.verified]),
      [[p.email, false]],
    );

    const mail = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    assert.equal(mail.subject, `Verify your email on ${site()}`);
    assert.match(mail.from ?? '', /E2E Instance.*noreply@e2e\.example\.com/);
    assert.equal(mail.ehloName, 'e2e.example.com');
    const link = linkIn(mail, `${stack.siteConfig.externalURL}/-/verify-email`);
    const followed = await accounts.follow(link);
    expectStatus(followed, 200, 'follow the verification link');

    const after = await accounts.user(user.id, admin.auth);
    assert.deepEqual(
      after.emails.map((e) => [e.email, e.verified]),
      [[p.email, true]],
    );
    // A link is single-use.
    assert.equal((await accounts.follow(link)).status, 400);

    const deliveries = await notifications.settled({ userId: user.id });
    assert.deepEqual(describeDeliveries(deliveries), [`email-verification → ${p.email} (sent)`]);
    assert.equal(stack.mailbox.to(p.email).length, 1, 'exactly the verification email');
  });

  it('a user a site admin created gets a set-password link; setting the password verifies the address', async () => {
    const p = newPerson('created');
    const created = expectStatus(
      await call<{ id: string; emails: { verified: boolean }[] }>(stack.accounts.url, 'POST', '/users', {
        auth: admin.auth,
        body: { username: p.username, email: p.email, origin: 'site-admin' },
      }),
      201,
      'admin creates a user',
    );
    assert.equal(created.emails[0]?.verified, false);

    const mail = await stack.mailbox.waitFor(p.email, /^Set your password on/);
    const link = linkIn(mail, `${stack.siteConfig.externalURL}/password-reset`);
    // What the page the link opens does: describe the link, then post the code from its query.
    const described = expectStatus(await accounts.follow(link), 200, 'open the set-password link');
    assert.equal(described.kind, 'set-password');
    const code = link.searchParams.get('code');
    assert.ok(code, `the link carries its code: ${link}`);
    expectStatus(
      await call(stack.accounts.url, 'POST', '/password-reset', { body: { code, password: p.password } }),
      200,
      'set the password with the link',
    );

    const user = await accounts.user(created.id, admin.auth);
    assert.deepEqual(
      user.emails.map((e) => [e.email, e.verified]),
      [[p.email, true]],
    );
    assert.equal(user.hasPassword, true);
    // The password now works: the user obtains an API key with it.
    await accounts.createKey(created.id, basic(p.username, p.password), 'first key');
    await stack.mailbox.waitFor(p.email, /^An API key was created/);

    const deliveries = await notifications.settled({ userId: created.id });
    assert.deepEqual(describeDeliveries(deliveries), [
      `set-password → ${p.email} (sent)`,
      `api-key-created → ${p.email} (sent)`,
    ]);
    assert.equal(stack.mailbox.to(p.email).length, 2);
  });

  it('an external-provider user is verified and gets the API-key email at once', async () => {
    const p = newPerson('octo');
    const user = expectStatus(
      await call<{ id: string; emails: { verified: boolean }[] }>(
        stack.accounts.url,
        'PUT',
        `/external-accounts/github/${encodeURIComponent(p.username)}`,
        { auth: admin.auth, body: { username: p.username, email: p.email } },
      ),
      201,
      'the auth gateway reports a GitHub user',
    );
    assert.equal(user.emails[0]?.verified, true);
    await accounts.createKey(user.id, admin.auth, 'ci');

    const mail = await stack.mailbox.waitFor(p.email, /^An API key was created/);
    assert.match(mail.text ?? '', /"ci"/);
    const deliveries = await notifications.settled({ userId: user.id });
    assert.deepEqual(describeDeliveries(deliveries), [`api-key-created → ${p.email} (sent)`]);
    assert.equal(stack.mailbox.to(p.email).length, 1, 'no verification email for a verified address');
  });

  it('a user created through the API is verified: no verification email, product emails at once', async () => {
    const p = newPerson('bot');
    const user = expectStatus(
      await call<{ id: string; emails: { verified: boolean }[] }>(stack.accounts.url, 'POST', '/users', {
        auth: admin.auth,
        body: { username: p.username, email: p.email, origin: 'api' },
      }),
      201,
      'an automation creates a user',
    );
    assert.equal(user.emails[0]?.verified, true);
    await accounts.createKey(user.id, admin.auth, 'automation');

    await stack.mailbox.waitFor(p.email, /^An API key was created/);
    const deliveries = await notifications.settled({ userId: user.id });
    assert.deepEqual(describeDeliveries(deliveries), [`api-key-created → ${p.email} (sent)`]);
    assert.equal(stack.mailbox.to(p.email).length, 1);
  });

  it('a site admin marks an address verified: product emails reach it from then on', async () => {
    const p = newPerson('vouched');
    const created = expectStatus(
      await call<{ id: string }>(stack.accounts.url, 'POST', '/users', {
        auth: admin.auth,
        body: { username: p.username, email: p.email, origin: 'site-admin' },
      }),
      201,
      'admin creates a user',
    );
    await stack.mailbox.waitFor(p.email, /^Set your password on/);
    // Before: unverified, so a key created for the user sends nothing and says why.
    await accounts.createKey(created.id, admin.auth, 'before');
    await notifications.waitForDelivery(
      { userId: created.id },
      (d) => d.emailKind === 'api-key-created' && d.status === 'suppressed',
      'API-key email suppressed for an unverified primary',
    );

    const verified = expectStatus(
      await call<{ emails: { email: string; verified: boolean }[] }>(
        stack.accounts.url,
        'PUT',
        `/users/${created.id}/emails/${encodeURIComponent(p.email)}/verified`,
        { auth: admin.auth, body: { verified: true } },
      ),
      200,
      'admin sets the address verified',
    );
    assert.deepEqual(
      verified.emails.map((e) => [e.email, e.verified]),
      [[p.email, true]],
    );

    await accounts.createKey(created.id, admin.auth, 'after');
    const mail = await stack.mailbox.waitFor(p.email, /^An API key was created/);
    assert.match(mail.text ?? '', /"after"/);

    const deliveries = await notifications.settled({ userId: created.id });
    assert.deepEqual(describeDeliveries(deliveries), [
      `set-password → ${p.email} (sent)`,
      `api-key-created → ${p.email} (suppressed: primary-unverified)`,
      `api-key-created → ${p.email} (sent)`,
    ]);
    assert.deepEqual(
      stack.mailbox.to(p.email).map((m) => m.subject),
      [`Set your password on ${site()}`, `An API key was created on your ${site()} account`],
    );
  });
});

describe('end to end: secrets', () => {
  it("no API key, link code or SMTP password reached either service's log", () => {
    assert.ok(stack.secrets.size > 0, 'the scenarios handled secrets');
    assert.deepEqual(stack.leakedSecrets(), []);
    // Not silence: the requests that carried link codes were logged, with the code redacted.
    assert.match(stack.accounts.output(), /verify-email\?[^"\s]*code=REDACTED/);
  });
});
