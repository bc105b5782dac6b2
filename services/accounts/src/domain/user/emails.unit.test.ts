import { describe, it } from 'node:test';
import {
  alice,
  aliceSignedUp,
  bob,
  given,
  history,
  later,
  now,
  sealed,
  withoutSmtp,
  withSmtp,
} from './spec.test-support.ts';

const verifyRequested = (email: string, at: Date) => ({
  type: 'EmailVerificationRequested' as const,
  data: {
    email,
    token: sealed('EmailVerificationRequested'),
    expiresAt: new Date(at.getTime() + 24 * 3600_000).toISOString(),
  },
});
const added = (email: string) => ({ type: 'EmailAdded' as const, data: { email } });
const verified = (
  email: string,
  method: 'verification-link' | 'site-admin' | 'set-password-link' = 'verification-link',
) => ({
  type: 'EmailVerified' as const,
  data: { email, method },
});

describe('AddEmail', () => {
  const cmd = (email: string, site = withSmtp) => ({
    type: 'AddEmail' as const,
    email,
    site,
    seal: sealed,
    now,
  });

  it('adds an unverified address and, with SMTP, requests its verification', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@work.example'))
      .thenEmits([added('alice@work.example'), verifyRequested('alice@work.example', now)]);
  });
  it('without SMTP, adds it unverified and sends nothing', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@work.example', withoutSmtp))
      .thenEmits([added('alice@work.example')]);
  });
  it('refuses an address the user already has', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com'))
      .thenRefused('email-exists', 'email');
  });
  it('refuses a fourth unverified address', () => {
    given([aliceSignedUp(false), added('a@x.example'), added('b@x.example')])
      .when(cmd('c@x.example'))
      .thenRefused('too-many-unverified-emails', 'email');
  });
  it('allows another once one of three is verified', () => {
    given([aliceSignedUp(false), added('a@x.example'), added('b@x.example'), verified('a@x.example')])
      .when(cmd('c@x.example', withoutSmtp))
      .thenEmits([added('c@x.example')]);
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example')).thenRefused('user-not-found');
  });
});

describe('RemoveEmail', () => {
  const cmd = (email: string) => ({ type: 'RemoveEmail' as const, email, now });
  it('removes a non-primary address', () => {
    given([aliceSignedUp(true), added('a@x.example')])
      .when(cmd('a@x.example'))
      .thenEmits([{ type: 'EmailRemoved', data: { email: 'a@x.example' } }]);
  });
  it('refuses to remove the primary address', () => {
    given([aliceSignedUp(true), added('a@x.example')])
      .when(cmd('alice@example.com'))
      .thenRefused('cannot-remove-primary-email', 'email');
  });
  it('refuses an address the user does not have (or no longer has)', () => {
    given([
      aliceSignedUp(true),
      added('a@x.example'),
      { type: 'EmailRemoved', data: { email: 'a@x.example' } },
    ])
      .when(cmd('a@x.example'))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example')).thenRefused('user-not-found');
  });
});

describe('SetPrimaryEmail', () => {
  const cmd = (email: string) => ({ type: 'SetPrimaryEmail' as const, email, now });
  it('makes a verified address primary', () => {
    given([aliceSignedUp(true), added('a@x.example'), verified('a@x.example')])
      .when(cmd('a@x.example'))
      .thenEmits([
        { type: 'PrimaryEmailChanged', data: { email: 'a@x.example', previousEmail: 'alice@example.com' } },
      ]);
  });
  it('does nothing when the address is primary already', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com'))
      .thenNothingHappened();
  });
  it('refuses an unverified address: primary email must be verified', () => {
    given([aliceSignedUp(true), added('a@x.example')])
      .when(cmd('a@x.example'))
      .thenRefused('primary-email-must-be-verified', 'email');
  });
  it('refuses an address the user does not have', () => {
    given([aliceSignedUp(true)])
      .when(cmd('a@x.example'))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example')).thenRefused('user-not-found');
  });
});

describe('RequestEmailVerification', () => {
  const cmd = (email: string, at: Date, site = withSmtp) => ({
    type: 'RequestEmailVerification' as const,
    email,
    site,
    seal: sealed,
    now: at,
  });
  // Sign-up at `now` requested the first verification email at now + 1 s (the second event).
  const signedUp = history([aliceSignedUp(false), verifyRequested('alice@example.com', later(1000))]);

  it('requests a new verification email once a minute has passed', () => {
    given(signedUp)
      .when(cmd('alice@example.com', later(61_000)))
      .thenEmits([verifyRequested('alice@example.com', later(61_000))]);
  });
  it('refuses within the minute: sent too recently', () => {
    given(signedUp)
      .when(cmd('alice@example.com', later(30_000)))
      .thenRefused('sent-too-recently', 'email');
  });
  it('the limit is per address', () => {
    given([...signedUp, ...history([added('a@x.example')], later(2000))])
      .when(cmd('a@x.example', later(3000)))
      .thenEmits([verifyRequested('a@x.example', later(3000))]);
  });
  it('refuses a verified address', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com', now))
      .thenRefused('email-already-verified', 'email');
  });
  it('refuses when SMTP is not configured', () => {
    given([aliceSignedUp(false)])
      .when(cmd('alice@example.com', now, withoutSmtp))
      .thenRefused('smtp-not-configured');
  });
  it('refuses an address the user does not have', () => {
    given([aliceSignedUp(false)])
      .when(cmd('a@x.example', now))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example', now)).thenRefused('user-not-found');
  });
});

describe('VerifyEmailByLink', () => {
  const cmd = (email: string) => ({ type: 'VerifyEmailByLink' as const, email, now });
  it('verifies the address', () => {
    given([aliceSignedUp(false)])
      .when(cmd('alice@example.com'))
      .thenEmits([verified('alice@example.com')]);
  });
  it('does nothing for an address verified meanwhile', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com'))
      .thenNothingHappened();
  });
  it('refuses an address removed since the link was sent', () => {
    given([
      aliceSignedUp(true),
      added('a@x.example'),
      { type: 'EmailRemoved', data: { email: 'a@x.example' } },
    ])
      .when(cmd('a@x.example'))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example')).thenRefused('user-not-found');
  });
});

describe('SetEmailVerified (site admin)', () => {
  const cmd = (email: string, v: boolean) => ({
    type: 'SetEmailVerified' as const,
    email,
    verified: v,
    by: bob,
    now,
  });
  it('verifies an unverified address', () => {
    given([aliceSignedUp(false)])
      .when(cmd('alice@example.com', true))
      .thenEmits([verified('alice@example.com', 'site-admin')]);
  });
  it('un-verifies a verified address, naming the admin', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com', false))
      .thenEmits([{ type: 'EmailUnverified', data: { email: 'alice@example.com', by: bob } }]);
  });
  it('does nothing when the address is in that state already', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com', true))
      .thenNothingHappened();
    given([aliceSignedUp(false)])
      .when(cmd('alice@example.com', false))
      .thenNothingHappened();
  });
  it('refuses an address the user does not have', () => {
    given([aliceSignedUp(true)])
      .when(cmd('a@x.example', true))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('a@x.example', true)).thenRefused('user-not-found');
  });
  it('an un-verified primary stays primary', () => {
    given([aliceSignedUp(true), { type: 'EmailUnverified', data: { email: 'alice@example.com', by: bob } }])
      .when({ type: 'RemoveEmail', email: 'alice@example.com', now })
      .thenRefused('cannot-remove-primary-email', 'email');
  });
  it('uses the user id of the stream', () => {
    given(history([aliceSignedUp(true)], now, alice))
      .when({ type: 'SetSiteAdmin', siteAdmin: false, by: alice, now })
      .thenRefused('cannot-change-own-site-admin', 'siteAdmin');
  });
});
