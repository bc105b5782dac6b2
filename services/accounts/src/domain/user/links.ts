import type { AccountsEventData } from '@sitemail/contracts';
import type { Sealer } from './types.ts';

/** How long each kind of link stays valid. Sourcegraph's reset links last 4 hours. */
export const linkLifetimes = {
  EmailVerificationRequested: 24 * 3600_000,
  PasswordSetLinkRequested: 72 * 3600_000,
  PasswordResetRequested: 4 * 3600_000,
  UserInvited: 7 * 24 * 3600_000,
} as const;

export const expires = (now: Date, kind: keyof typeof linkLifetimes) =>
  new Date(now.getTime() + linkLifetimes[kind]).toISOString();

export function verificationRequest(email: string, now: Date, seal: Sealer): AccountsEventData {
  return {
    type: 'EmailVerificationRequested',
    data: {
      email,
      token: seal('EmailVerificationRequested'),
      expiresAt: expires(now, 'EmailVerificationRequested'),
    },
  };
}
