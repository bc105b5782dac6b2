import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsEvent, FleetEvent } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import type { Decision } from './decision.ts';
import { decideNotifications, recipientUserIdFor } from './policy.ts';
import { evolveRecipient, type Recipient } from './recipient.ts';
import { redecideAwaiting } from './redecide.ts';

const site: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com',
  'email.address': 'from@example.com',
  'email.smtp': { authentication: 'none', host: 'smtp.example.com', port: 587, noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
};
const { 'email.smtp': _smtp, ...noSmtp } = site;
const ssoOnly: SiteConfig = { ...site, 'auth.providers': [{ type: 'github' }] };

/** Given the user's events so far, when `event` happens, the decisions (with the state once it is applied). */
function when(given: AccountsEvent[], event: FleetEvent, config: SiteConfig = site): Decision[] {
  let r: Recipient | undefined;
  for (const e of given) r = evolveRecipient(r, e);
  if (event.type !== 'CodeMonitorTriggered' && event.type !== 'UserInvited') r = evolveRecipient(r, event);
  return decideNotifications(event, r, config);
}

const summary = (ds: Decision[]) =>
  ds.map((d) =>
    d.kind === 'send'
      ? `send ${d.email} to ${d.to}`
      : `${d.kind === 'suppress' ? 'suppress' : 'await'} ${d.email}: ${d.reason} ${d.address ?? ''}`.trim(),
  );

describe('decideNotifications: product emails go only to a verified primary', () => {
  it('suppresses the API-key email when the primary is unverified, naming the reason and address', () => {
    const s = new Stream();
    assert.deepEqual(
      summary(when([s.created({ email: 'a@example.com', verified: false })], s.apiKeyCreated())),
      ['suppress api-key-created: primary-unverified a@example.com'],
    );
  });

  it('sends the API-key email to the verified primary only, not to other verified addresses', () => {
    const s = new Stream();
    const given = [
      s.created({ email: 'a@example.com', verified: false }),
      s.next('EmailAdded', { email: 'b@example.com' }),
      s.verified('b@example.com'),
      s.verified('a@example.com'),
    ];
    const ds = when(given, s.apiKeyCreated('deploy'));
    assert.deepEqual(summary(ds), ['send api-key-created to a@example.com']);
    const d = ds[0]!;
    assert.ok(d.kind === 'send' && d.message.kind === 'api-key-created');
    assert.equal(d.message.keyName, 'deploy');
    assert.equal(d.userId, s.userId);
  });

  it('waits for a user it does not know yet when the event comes from another topic', () => {
    const s = new Stream();
    const ds = when([], codeMonitorTriggered(s.userId));
    assert.deepEqual(summary(ds), ['await code-monitor-triggered: unknown-recipient']);
    assert.equal(ds[0]!.userId, s.userId);
  });

  it("suppresses for good an email of the user's own stream when the user is unknown: UserCreated would have come first", () => {
    const s = new Stream();
    s.position = 3;
    assert.deepEqual(summary(when([], s.apiKeyCreated())), ['suppress api-key-created: unknown-recipient']);
  });

  it('suppresses when the primary address is not among the known addresses', () => {
    const s = new Stream();
    const given = [
      s.created({ email: 'a@example.com', verified: true }),
      s.next('EmailRemoved', { email: 'a@example.com' }),
    ];
    assert.deepEqual(summary(when(given, s.apiKeyCreated())), [
      'suppress api-key-created: no-primary-address',
    ]);
  });

  it('sends code-monitoring notifications to the verified primary', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true, provider: 'github' })];
    assert.deepEqual(summary(when(given, codeMonitorTriggered(s.userId, '<script>'))), [
      'send code-monitor-triggered to a@example.com',
    ]);
  });

  it('sends the primary-changed notice to the new primary once it is verified, and suppresses it before', () => {
    const s = new Stream();
    const given = [
      s.created({ email: 'a@example.com', verified: true }),
      s.next('EmailAdded', { email: 'b@example.com' }),
    ];
    const change = s.next('PrimaryEmailChanged', { email: 'b@example.com', previousEmail: 'a@example.com' });
    assert.deepEqual(summary(when(given, change)), [
      'suppress primary-email-changed: primary-unverified b@example.com',
    ]);
    const s2 = new Stream();
    const given2 = [
      s2.created({ email: 'a@example.com', verified: true }),
      s2.next('EmailAdded', { email: 'b@example.com' }),
      s2.verified('b@example.com'),
    ];
    const change2 = s2.next('PrimaryEmailChanged', {
      email: 'b@example.com',
      previousEmail: 'a@example.com',
    });
    assert.deepEqual(summary(when(given2, change2)), ['send primary-email-changed to b@example.com']);
  });

  it('sends password-changed notices except for the first password set through the set-password link', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true })];
    assert.deepEqual(summary(when(given, s.next('PasswordChanged', { via: 'user' }))), [
      'send password-changed to a@example.com',
    ]);
    assert.deepEqual(when(given, s.next('PasswordChanged', { via: 'set-password-link' })), []);
  });

  it('tells a user who became site admin, at the verified primary', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true })];
    assert.deepEqual(
      summary(when(given, s.next('SiteAdminChanged', { siteAdmin: true, changedBy: s.userId }))),
      ['send site-admin-changed to a@example.com'],
    );
  });

  it('sends nothing for events without an email of their own', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true })];
    for (const e of [
      s.next('EmailAdded', { email: 'b@example.com' }),
      s.verified('b@example.com'),
      s.next('EmailUnverified', { email: 'b@example.com', by: s.userId }),
      s.next('EmailRemoved', { email: 'b@example.com' }),
    ]) {
      assert.deepEqual(when(given, e), [], e.type);
    }
    assert.deepEqual(when([], given[0]!), []);
  });
});

describe('decideNotifications: emails that verify an address go to it', () => {
  it('sends the verification email to the unverified address', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: false })];
    const ds = when(given, s.verificationRequested('a@example.com'));
    assert.deepEqual(summary(ds), ['send email-verification to a@example.com']);
    const d = ds[0]!;
    assert.ok(d.kind === 'send' && d.message.kind === 'email-verification');
    assert.equal(d.message.link.userId, s.userId);
    assert.equal(d.message.link.eventType, 'EmailVerificationRequested');
  });

  it('sends the verification email to an added, non-primary address', () => {
    const s = new Stream();
    const given = [
      s.created({ email: 'a@example.com', verified: true }),
      s.next('EmailAdded', { email: 'b@example.com' }),
    ];
    assert.deepEqual(summary(when(given, s.verificationRequested('b@example.com'))), [
      'send email-verification to b@example.com',
    ]);
  });

  it('suppresses verification of an address that is already verified or no longer the user’s', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true })];
    assert.deepEqual(summary(when(given, s.verificationRequested('a@example.com'))), [
      'suppress email-verification: address-already-verified a@example.com',
    ]);
    assert.deepEqual(summary(when(given, s.verificationRequested('gone@example.com'))), [
      'suppress email-verification: address-not-on-user gone@example.com',
    ]);
  });

  it('sends the set-password link to the (unverified) address of an admin-created user', () => {
    const s = new Stream();
    const given = [s.created({ email: 'b@example.com', verified: false, username: 'bob' })];
    const event = s.next('PasswordSetLinkRequested', {
      email: 'b@example.com',
      token: s.seal('set-1', 'PasswordSetLinkRequested'),
      expiresAt: '2026-11-27T00:00:00.000Z',
    });
    assert.deepEqual(summary(when(given, event)), ['send set-password to b@example.com']);
  });

  it('suppresses set-password and reset links when auth.providers has no builtin entry', () => {
    const s = new Stream();
    const given = [s.created({ email: 'b@example.com', verified: true })];
    const setLink = s.next('PasswordSetLinkRequested', {
      email: 'b@example.com',
      token: s.seal('set-1', 'PasswordSetLinkRequested'),
      expiresAt: '2026-11-27T00:00:00.000Z',
    });
    const reset = s.next('PasswordResetRequested', {
      email: 'b@example.com',
      token: s.seal('reset-1', 'PasswordResetRequested'),
      expiresAt: '2026-11-27T00:00:00.000Z',
    });
    assert.deepEqual(summary(when(given, setLink, ssoOnly)), [
      'suppress set-password: builtin-auth-disabled b@example.com',
    ]);
    assert.deepEqual(summary(when(given, reset, ssoOnly)), [
      'suppress password-reset: builtin-auth-disabled b@example.com',
    ]);
  });

  it('sends a reset link only to a verified address of the user', () => {
    const reset = (s: Stream, email: string) =>
      s.next('PasswordResetRequested', {
        email,
        token: s.seal('reset-1', 'PasswordResetRequested'),
        expiresAt: '2026-11-27T00:00:00.000Z',
      });
    const unverified = new Stream();
    const given = [unverified.created({ email: 'a@example.com', verified: false })];
    assert.deepEqual(summary(when(given, reset(unverified, 'a@example.com'))), [
      'suppress password-reset: address-unverified a@example.com',
    ]);
    const verified = new Stream();
    const given2 = [verified.created({ email: 'a@example.com', verified: true })];
    assert.deepEqual(summary(when(given2, reset(verified, 'a@example.com'))), [
      'send password-reset to a@example.com',
    ]);
    assert.deepEqual(summary(when(given2, reset(verified, 'z@example.com'))), [
      'suppress password-reset: address-not-on-user z@example.com',
    ]);
  });
});

describe('decideNotifications: invitations', () => {
  const invite = (inviter: Stream, email: string, inviteeUserId?: string) =>
    inviter.next('UserInvited', {
      invitationId: '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7',
      email,
      inviterUsername: 'alice',
      organization: 'acme',
      ...(inviteeUserId ? { inviteeUserId } : {}),
      token: inviter.seal('invite-1', 'UserInvited'),
      expiresAt: '2026-12-02T00:00:00.000Z',
    });

  it('sends an invitation for someone who is not a user to the invited address', () => {
    const inviter = new Stream();
    const event = invite(inviter, 'carol@example.org');
    assert.equal(recipientUserIdFor(event), undefined);
    assert.deepEqual(summary(decideNotifications(event, undefined, site)), [
      'send invitation to carol@example.org',
    ]);
  });

  it('sends an organization invitation for an existing user to their verified primary, not the invited address', () => {
    const invitee = new Stream();
    let r = evolveRecipient(
      undefined,
      invitee.created({ email: 'bob@example.com', verified: true, username: 'bob' }),
    );
    r = evolveRecipient(r, invitee.next('EmailAdded', { email: 'bob@work.example' }));
    const event = invite(new Stream(), 'bob@work.example', invitee.userId);
    assert.equal(recipientUserIdFor(event), invitee.userId);
    const ds = decideNotifications(event, r, site);
    assert.deepEqual(summary(ds), ['send invitation to bob@example.com']);
    assert.equal(ds[0]!.userId, invitee.userId);
    // The link still names the invited address, which is what accounts checks the code against.
    assert.ok(ds[0]!.kind === 'send' && ds[0]!.message.kind === 'invitation');
    assert.equal(ds[0]!.message.email, 'bob@work.example');
    assert.equal(ds[0]!.message.inviteeUsername, 'bob');
  });

  it('suppresses an organization invitation for an existing user whose primary is unverified', () => {
    const invitee = new Stream();
    const r = evolveRecipient(undefined, invitee.created({ email: 'bob@example.com', verified: false }));
    assert.deepEqual(
      summary(decideNotifications(invite(new Stream(), 'bob@example.com', invitee.userId), r, site)),
      ['suppress invitation: primary-unverified bob@example.com'],
    );
    assert.deepEqual(
      summary(decideNotifications(invite(new Stream(), 'x@example.com', invitee.userId), undefined, site)),
      ['await invitation: unknown-recipient'],
    );
  });
});

describe('redecideAwaiting: an email waiting for its recipient', () => {
  const monitor = (s: Stream) => codeMonitorTriggered(s.userId);
  const recipient = (events: AccountsEvent[]) =>
    events.reduce<Recipient | undefined>((r, e) => evolveRecipient(r, e), undefined);

  it('keeps waiting while the recipient is unknown, and is suppressed as unknown-recipient once the wait is over', () => {
    const s = new Stream();
    const event = monitor(s);
    assert.deepEqual(summary([redecideAwaiting(event, 0, undefined, site, false)]), [
      'await code-monitor-triggered: unknown-recipient',
    ]);
    assert.deepEqual(summary([redecideAwaiting(event, 0, undefined, site, true)]), [
      'suppress code-monitor-triggered: unknown-recipient',
    ]);
  });

  it('keeps waiting through an unverified primary (its verification may still be on the way) and is sent once verified', () => {
    const s = new Stream();
    const event = monitor(s);
    const created = s.created({ email: 'a@example.com', verified: false });
    assert.deepEqual(summary([redecideAwaiting(event, 0, recipient([created]), site, false)]), [
      'await code-monitor-triggered: primary-unverified a@example.com',
    ]);
    assert.deepEqual(summary([redecideAwaiting(event, 0, recipient([created]), site, true)]), [
      'suppress code-monitor-triggered: primary-unverified a@example.com',
    ]);
    const verified = recipient([created, s.verified('a@example.com')]);
    const d = redecideAwaiting(event, 0, verified, site, false);
    assert.deepEqual(summary([d]), ['send code-monitor-triggered to a@example.com']);
    assert.ok(d.kind === 'send' && d.message.kind === 'code-monitor-triggered');
    assert.equal(d.message.username, 'alice');
  });

  it('is suppressed at once for a config reason once the recipient is known; sent even after the wait if sendable', () => {
    const s = new Stream();
    const r = recipient([s.created({ email: 'a@example.com', verified: true })]);
    assert.deepEqual(summary([redecideAwaiting(monitor(s), 0, r, noSmtp, false)]), [
      'suppress code-monitor-triggered: smtp-not-configured a@example.com',
    ]);
    assert.deepEqual(summary([redecideAwaiting(monitor(s), 0, r, site, true)]), [
      'send code-monitor-triggered to a@example.com',
    ]);
  });

  it('sends a waiting invitation of an existing user to their verified primary once known', () => {
    const invitee = new Stream();
    const inviter = new Stream();
    const event = inviter.next('UserInvited', {
      invitationId: '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7',
      email: 'bob@work.example',
      inviterUsername: 'alice',
      inviteeUserId: invitee.userId,
      token: inviter.seal('invite-1', 'UserInvited'),
      expiresAt: '2026-12-02T00:00:00.000Z',
    });
    assert.deepEqual(summary(decideNotifications(event, undefined, site)), [
      'await invitation: unknown-recipient',
    ]);
    const r = recipient([invitee.created({ email: 'bob@example.com', verified: true, username: 'bob' })]);
    const d = redecideAwaiting(event, 0, r, site, false);
    assert.deepEqual(summary([d]), ['send invitation to bob@example.com']);
    assert.ok(d.kind === 'send' && d.message.kind === 'invitation');
    assert.equal(d.message.email, 'bob@work.example');
  });
});

describe('decideNotifications: site config', () => {
  it('suppresses every email when SMTP is not configured, keeping the address it would have gone to', () => {
    const s = new Stream();
    const given = [s.created({ email: 'a@example.com', verified: true })];
    assert.deepEqual(summary(when(given, s.apiKeyCreated(), noSmtp)), [
      'suppress api-key-created: smtp-not-configured a@example.com',
    ]);
    assert.deepEqual(summary(when(given, s.next('EmailAdded', { email: 'b@example.com' }), noSmtp)), []);
  });

  it('suppresses when no From address is configured', () => {
    const { 'email.address': _a, ...noFrom } = site;
    const s = new Stream();
    assert.deepEqual(
      summary(when([s.created({ email: 'a@example.com', verified: true })], s.apiKeyCreated(), noFrom)),
      ['suppress api-key-created: sender-address-not-configured a@example.com'],
    );
  });

  it('reports a policy reason before the SMTP one when both apply', () => {
    const s = new Stream();
    assert.deepEqual(
      summary(when([s.created({ email: 'a@example.com', verified: false })], s.apiKeyCreated(), noSmtp)),
      ['suppress api-key-created: primary-unverified a@example.com'],
    );
  });
});
