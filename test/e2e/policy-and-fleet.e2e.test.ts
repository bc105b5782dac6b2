/**
 * End to end: the verified-primary-email policy, invitations, an event from another fleet service,
 * and a single-sign-on site — accounts and notifications as separate processes over Kafka, each
 * with its own database, notifications sending to a real SMTP server. One set of processes for
 * the file; every scenario has users of its own. The single-sign-on scenario changes the site
 * config file (both services follow it without a restart), so it runs last.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type CodeMonitorTriggered, sources, topics, toWireMessage } from '@sitemail/contracts';
import { readTopic } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
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
  token,
  type UserView,
} from './client.ts';
import { eventually, type Stack, startStack } from './stack.ts';

let stack: Stack;
let accounts: Accounts;
let notifications: Notifications;
let admin: Awaited<ReturnType<typeof bootstrapAdmin>>;

before(async () => {
  stack = await startStack({ label: 'policy' });
  accounts = new Accounts(stack.accounts.url, stack.secrets);
  notifications = new Notifications(stack.notifications.url, () => admin.auth);
  admin = await bootstrapAdmin(accounts, stack.notifications.url);
});

after(async () => {
  await stack?.stop();
});

const site = () => stack.siteConfig['email.senderName'] as string;
const subjects = (address: string) => stack.mailbox.to(address).map((m) => m.subject);

async function apiUser(prefix: string): Promise<UserView & { person: ReturnType<typeof newPerson> }> {
  const person = newPerson(prefix);
  const user = expectStatus(
    await call<UserView>(stack.accounts.url, 'POST', '/users', {
      auth: admin.auth,
      body: { username: person.username, email: person.email, origin: 'api' },
    }),
    201,
    'an automation creates a user',
  );
  return { ...user, person };
}

describe('end to end: the verified-primary-email policy', () => {
  it('an unverified user creates a key: no email, the suppression is logged; verified, the next key emails the primary only', async () => {
    const p = newPerson('careful');
    const user = await accounts.signUp(p);
    const verification = await stack.mailbox.waitFor(p.email, /^Verify your email on/);

    // A key while the primary is unverified: suppressed, and the delivery log says why.
    const { secret } = await accounts.createKey(user.id, basic(p.username, p.password), 'early');
    const suppressed = await notifications.waitForDelivery(
      { userId: user.id },
      (d) => d.emailKind === 'api-key-created',
      'the first API-key email decision',
    );
    assert.equal(suppressed.status, 'suppressed');
    assert.equal(suppressed.suppressionReason, 'primary-unverified');
    assert.equal(suppressed.recipientAddress, p.email);
    assert.ok(suppressed.notSentReason, 'the log says in words why it was not sent');

    // A second address, verified too, so "the primary only" means something.
    const second = `second-${p.email}`;
    await accounts.addEmail(user.id, second, token(secret));
    const secondVerification = await stack.mailbox.waitFor(second, /^Verify your email on/);
    expectStatus(
      await accounts.follow(linkIn(secondVerification, `${stack.siteConfig.externalURL}/-/verify-email`)),
      200,
      'verify the second address',
    );
    expectStatus(
      await accounts.follow(linkIn(verification, `${stack.siteConfig.externalURL}/-/verify-email`)),
      200,
      'verify the primary address',
    );
    const verified = await accounts.user(user.id, token(secret));
    assert.deepEqual(
      verified.emails.map((e) => [e.email, e.verified, e.primary]),
      [
        [p.email, true, true],
        [second, true, false],
      ],
    );

    await accounts.createKey(user.id, token(secret), 'later');
    const keyMail = await stack.mailbox.waitFor(p.email, /^An API key was created/);
    assert.match(keyMail.text ?? '', /"later"/);
    assert.deepEqual(keyMail.envelope.to, [p.email], 'to the primary, and only to it');

    const deliveries = await notifications.settled({ userId: user.id });
    assert.deepEqual(describeDeliveries(deliveries), [
      `email-verification → ${p.email} (sent)`,
      `api-key-created → ${p.email} (suppressed: primary-unverified)`,
      `email-verification → ${second} (sent)`,
      `api-key-created → ${p.email} (sent)`,
    ]);
    assert.deepEqual(subjects(p.email), [
      `Verify your email on ${site()}`,
      `An API key was created on your ${site()} account`,
    ]);
    assert.deepEqual(subjects(second), [`Verify your email on ${site()}`]);
    assert.doesNotMatch(keyMail.raw, new RegExp(secret), 'the key secret is never in an email');
  });
});

describe('end to end: invitations', () => {
  it('an invitation to an address of no user goes to it; its link lets the invitee sign up, verified at once', async () => {
    const p = newPerson('newcomer');
    expectStatus(
      await call(stack.accounts.url, 'POST', '/invitations', {
        auth: admin.auth,
        body: { email: p.email, organization: 'acme' },
      }),
      201,
      'invite',
    );
    const mail = await stack.mailbox.waitFor(p.email, /invited you to/);
    assert.equal(mail.subject, `${admin.username} invited you to join "acme" on ${site()}`);

    const link = linkIn(mail, `${stack.siteConfig.externalURL}/-/invitation`);
    const opened = expectStatus(await accounts.follow(link), 200, 'open the invitation link');
    assert.equal((opened.invitation as { organization: string }).organization, 'acme');
    const code = link.searchParams.get('code');
    assert.ok(code, `the link carries its code: ${link}`);
    const user = await accounts.signUp(p, { invitationCode: code });
    assert.deepEqual(
      user.emails.map((e) => [e.email, e.verified]),
      [[p.email, true]],
      'the invitation link proved the address',
    );

    // A product email reaches the new user at once: no verification email came first.
    await accounts.createKey(user.id, basic(p.username, p.password), 'first');
    await stack.mailbox.waitFor(p.email, /^An API key was created/);
    assert.deepEqual(describeDeliveries(await notifications.settled({ userId: user.id })), [
      `api-key-created → ${p.email} (sent)`,
    ]);
    assert.deepEqual(subjects(p.email), [
      `${admin.username} invited you to join "acme" on ${site()}`,
      `An API key was created on your ${site()} account`,
    ]);
  });

  it('an invitation of an existing user goes to its verified primary', async () => {
    const invitee = await apiUser('member');
    // The invitation is an event of the inviter's stream, the user's creation one of its own: they may
    // travel on different partitions. Wait until notifications knows the invitee (its key email came).
    await accounts.createKey(invitee.id, admin.auth, 'member key');
    await stack.mailbox.waitFor(invitee.person.email, /^An API key was created/);
    expectStatus(
      await call(stack.accounts.url, 'POST', '/invitations', {
        auth: admin.auth,
        body: { email: invitee.person.email, organization: 'platform' },
      }),
      201,
      'invite an existing user',
    );
    const mail = await stack.mailbox.waitFor(invitee.person.email, /invited you to/);
    assert.equal(mail.subject, `${admin.username} invited you to join "platform" on ${site()}`);
    assert.deepEqual(describeDeliveries(await notifications.settled({ userId: invitee.id })), [
      `api-key-created → ${invitee.person.email} (sent)`,
      `invitation → ${invitee.person.email} (sent)`,
    ]);
    assert.equal(stack.mailbox.to(invitee.person.email).length, 2);
  });
});

describe('end to end: an event from another fleet service', () => {
  it('CodeMonitorTriggered reaches a verified primary; an unverified one is suppressed; a malformed message is dead-lettered', async () => {
    const verified = await apiUser('watcher');
    // Another topic, so no order with the user's own events: wait until notifications knows the user.
    await accounts.createKey(verified.id, admin.auth, 'watcher key');
    await stack.mailbox.waitFor(verified.person.email, /^An API key was created/);
    const unverifiedPerson = newPerson('unready');
    const unverified = await accounts.signUp(unverifiedPerson);
    await stack.mailbox.waitFor(unverifiedPerson.email, /^Verify your email on/);

    const monitorEvent = (userId: string, name: string): CodeMonitorTriggered => ({
      id: randomUUID(),
      type: 'CodeMonitorTriggered',
      userId,
      position: 1,
      time: new Date().toISOString(),
      schemaVersion: 1,
      data: {
        monitorId: randomUUID(),
        monitorName: name,
        query: 'repo:^github\\.com/acme/ TODO',
        resultCount: 3,
        resultsPath: '/code-monitoring/m1/results',
      },
    });
    const kafka = new Kafka({
      brokers: stack.kafka.brokers,
      clientId: 'code-monitoring',
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer();
    await producer.connect();
    try {
      const garbage = `not an event ${randomUUID()}`;
      await producer.send({
        topic: topics.codeMonitoringEvents,
        messages: [
          { key: verified.id, value: garbage },
          toWireMessage(monitorEvent(verified.id, 'TODOs <b>bold</b>'), sources.codeMonitoring),
          toWireMessage(monitorEvent(unverified.id, 'never sent'), sources.codeMonitoring),
        ],
      });

      const mail = await stack.mailbox.waitFor(verified.person.email, /new results on/);
      assert.equal(mail.subject, `[TODOs <b>bold</b>] 3 new results on ${site()}`);
      assert.match(
        mail.html ?? '',
        /TODOs &lt;b&gt;bold&lt;\/b&gt;/,
        'user-provided text is escaped in HTML',
      );
      assert.match(mail.text ?? '', new RegExp(`${stack.siteConfig.externalURL}/code-monitoring/m1/results`));

      const suppressed = await notifications.waitForDelivery(
        { userId: unverified.id },
        (d) => d.emailKind === 'code-monitor-triggered',
        'the code-monitoring decision for the unverified user',
      );
      assert.equal(suppressed.status, 'suppressed');
      assert.equal(suppressed.suppressionReason, 'primary-unverified');
      assert.deepEqual(subjects(unverifiedPerson.email), [`Verify your email on ${site()}`]);
      assert.deepEqual(describeDeliveries(await notifications.settled({ userId: verified.id })), [
        `api-key-created → ${verified.person.email} (sent)`,
        `code-monitor-triggered → ${verified.person.email} (sent)`,
      ]);

      if (stack.kafka.mock) {
        // A fresh cluster per stack: the only dead letter is ours.
        const [dead] = await readTopic(stack.kafka.brokers, topics.notificationsDeadLetter, { count: 1 });
        assert.equal(dead?.value, garbage);
        assert.equal(dead?.headers['x-original-topic'], topics.codeMonitoringEvents);
      }
    } finally {
      await producer.disconnect();
    }
  });
});

describe('end to end: a single-sign-on-only site', () => {
  it('refuses password reset and sends no password links once auth.providers has no builtin entry', async () => {
    // While builtin sign-in is on, a verified user can reset its password (the control).
    const p = newPerson('sso');
    const user = await accounts.signUp(p);
    const verification = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    await accounts.follow(linkIn(verification, `${stack.siteConfig.externalURL}/-/verify-email`));
    expectStatus(
      await call(stack.accounts.url, 'POST', '/password-reset-requests', { body: { email: p.email } }),
      202,
      'password reset with builtin sign-in',
    );
    await stack.mailbox.waitFor(p.email, /^Reset your password on/);

    // The site switches to single sign-on: the file changes, no service restarts.
    const { 'auth.providers': _providers, ...rest } = stack.siteConfig;
    stack.writeSiteConfig({ ...rest, 'auth.providers': [{ type: 'github' }, { type: 'saml' }] });
    // Probed with an address of no user: a refusal shows the new config, an acceptance sends nothing.
    const probe = `nobody-${p.email}`;
    const refused = await eventually('accounts to follow the new site config', async () => {
      // Gently: the route is rate-limited (10 a minute), and a missed file event is caught by a 5 s poll.
      await new Promise((r) => setTimeout(r, 1000));
      const reply = await call<{ detail: string }>(stack.accounts.url, 'POST', '/password-reset-requests', {
        body: { email: probe },
      });
      return reply.status === 202 ? undefined : reply;
    });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(refused.body.detail, /builtin/);
    const refusedForUser = await call<{ detail: string }>(
      stack.accounts.url,
      'POST',
      '/password-reset-requests',
      {
        body: { email: p.email },
      },
    );
    assert.equal(refusedForUser.status, 403);

    // A user a site admin creates now gets a plain verification link, not a set-password link.
    const created = newPerson('ssocreated');
    const createdUser = expectStatus(
      await call<UserView>(stack.accounts.url, 'POST', '/users', {
        auth: admin.auth,
        body: { username: created.username, email: created.email, origin: 'site-admin' },
      }),
      201,
      'admin creates a user on the single-sign-on site',
    );
    await stack.mailbox.waitFor(created.email, /^Verify your email on/);
    assert.deepEqual(describeDeliveries(await notifications.settled({ userId: createdUser.id })), [
      `email-verification → ${created.email} (sent)`,
    ]);
    assert.deepEqual(subjects(created.email), [`Verify your email on ${site()}`]);

    // The refused request sent nothing: the user's mailbox holds what it held before the switch.
    assert.deepEqual(describeDeliveries(await notifications.settled({ userId: user.id })), [
      `email-verification → ${p.email} (sent)`,
      `password-reset → ${p.email} (sent)`,
    ]);
    assert.deepEqual(subjects(p.email), [
      `Verify your email on ${site()}`,
      `Reset your password on ${site()}`,
    ]);
  });
});

describe('end to end: secrets', () => {
  it("no API key, link code or SMTP password reached either service's log", () => {
    assert.ok(stack.secrets.size > 0, 'the scenarios handled secrets');
    assert.deepEqual(stack.leakedSecrets(), []);
  });
});
