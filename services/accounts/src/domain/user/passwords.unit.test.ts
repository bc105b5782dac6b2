import { describe, it } from 'node:test';
import {
  aliceSignedUp,
  given,
  history,
  later,
  now,
  sealed,
  singleSignOn,
  withoutSmtp,
  withSmtp,
} from './spec.test-support.ts';
import type { UserEvent } from './types.ts';

const adminCreated = {
  type: 'UserCreated' as const,
  data: {
    username: 'alice',
    email: 'alice@example.com',
    emailVerified: false,
    origin: 'site-admin' as const,
    authProvider: { type: 'builtin' },
    siteAdmin: false,
  },
};

describe('SetPasswordByLink', () => {
  const cmd = (via: 'set-password-link' | 'reset-link', site = withSmtp) => ({
    type: 'SetPasswordByLink' as const,
    via,
    email: 'alice@example.com',
    site,
    now,
  });
  it('a set-password link sets the password and verifies the address it was sent to', () => {
    given([adminCreated])
      .when(cmd('set-password-link'))
      .thenEmits([
        { type: 'PasswordChanged', data: { via: 'set-password-link' } },
        { type: 'EmailVerified', data: { email: 'alice@example.com', method: 'set-password-link' } },
      ]);
  });
  it('a set-password link to an address verified meanwhile only sets the password', () => {
    given([{ ...adminCreated, data: { ...adminCreated.data, emailVerified: true } }])
      .when(cmd('set-password-link'))
      .thenEmits([{ type: 'PasswordChanged', data: { via: 'set-password-link' } }]);
  });
  it('a reset link sets the password', () => {
    given([aliceSignedUp(true)])
      .when(cmd('reset-link'))
      .thenEmits([{ type: 'PasswordChanged', data: { via: 'reset-link' } }]);
  });
  it('refuses when builtin auth was turned off since the link was sent', () => {
    given([adminCreated]).when(cmd('set-password-link', singleSignOn)).thenRefused('builtin-auth-disabled');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('reset-link')).thenRefused('user-not-found');
  });
});

describe('ChangePassword', () => {
  const cmd = (site = withSmtp) => ({ type: 'ChangePassword' as const, site, now });
  it('records the change, never the password', () => {
    given([aliceSignedUp(true)])
      .when(cmd())
      .thenEmits([{ type: 'PasswordChanged', data: { via: 'user' } }]);
  });
  it('refuses on a single-sign-on site', () => {
    given([aliceSignedUp(true)])
      .when(cmd(singleSignOn))
      .thenRefused('builtin-auth-disabled');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd()).thenRefused('user-not-found');
  });
});

describe('RequestPasswordReset', () => {
  const cmd = (email: string, site = withSmtp) => ({
    type: 'RequestPasswordReset' as const,
    email,
    site,
    seal: sealed,
    now,
  });
  it('emits a single-use reset link, valid 4 hours, for a verified address', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com'))
      .thenEmits([
        {
          type: 'PasswordResetRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('PasswordResetRequested'),
            expiresAt: '2026-11-25T14:00:00.000Z',
          },
        },
      ]);
  });
  const resetAt = (at: Date): UserEvent =>
    history(
      [
        {
          type: 'PasswordResetRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('PasswordResetRequested'),
            expiresAt: new Date(at.getTime() + 4 * 3600_000).toISOString(),
          },
        },
      ],
      at,
    )[0] as UserEvent;
  const signedUp = history([aliceSignedUp(true)], later(-2 * 3600_000));
  const at = (ms: number) => ({ ...cmd('alice@example.com'), now: later(ms) });
  it('sends no second reset email to an address within a minute (sent-too-recently)', () => {
    given([...signedUp, resetAt(now)])
      .when(at(59_000))
      .thenRefused('sent-too-recently', 'email');
  });
  it('sends another after a minute', () => {
    given([...signedUp, resetAt(now)])
      .when(at(60_000))
      .thenEmits([
        {
          type: 'PasswordResetRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('PasswordResetRequested'),
            expiresAt: later(60_000 + 4 * 3600_000).toISOString(),
          },
        },
      ]);
  });
  it('sends at most 5 an hour to an address, then again once the oldest is an hour old', () => {
    const five = [0, 1, 2, 3, 4].map((i) => resetAt(later(i * 120_000)));
    given([...signedUp, ...five])
      .when(at(30 * 60_000))
      .thenRefused('sent-too-recently', 'email');
    given([...signedUp, ...five])
      .when(at(3600_000))
      .thenEmits([
        {
          type: 'PasswordResetRequested',
          data: {
            email: 'alice@example.com',
            token: sealed('PasswordResetRequested'),
            expiresAt: later(3600_000 + 4 * 3600_000).toISOString(),
          },
        },
      ]);
  });
  it('refuses on a single-sign-on site (no builtin entry in auth.providers)', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com', singleSignOn))
      .thenRefused('builtin-auth-disabled');
  });
  it('refuses when SMTP is not configured', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com', withoutSmtp))
      .thenRefused('smtp-not-configured');
  });
  it('refuses an unverified address', () => {
    given([aliceSignedUp(false)])
      .when(cmd('alice@example.com'))
      .thenRefused('email-not-verified', 'email');
  });
  it('refuses an address the user does not have', () => {
    given([aliceSignedUp(true)])
      .when(cmd('a@x.example'))
      .thenRefused('email-not-found', 'email');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('alice@example.com')).thenRefused('user-not-found');
  });
});
