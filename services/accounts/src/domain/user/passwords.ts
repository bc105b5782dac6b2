import type { AccountsEventData } from '@sitemail/contracts';
import type { ChangePassword, RequestPasswordReset, SetPasswordByLink } from './commands.ts';
import type { Decision } from './decision.ts';
import { expires } from './links.ts';
import { builtinDisabled, emailNotFound, type Refusal, refuse, smtpNotConfigured } from './refusals.ts';
import type { ActiveUser, SitePolicy } from './types.ts';

/**
 * The reset throttle per address, whoever asks and from wherever: like the verification resend,
 * one reset email a minute, and at most 5 an hour, so that nobody can flood a mailbox with them.
 */
export const RESET_RESEND_INTERVAL_MS = 60_000;
export const RESETS_PER_HOUR = 5;

function resetTooSoon(requestedAt: string[] | undefined, now: Date): boolean {
  const times = (requestedAt ?? []).map((t) => Date.parse(t));
  const last = times.at(-1);
  if (last !== undefined && now.getTime() - last < RESET_RESEND_INTERVAL_MS) return true;
  return times.filter((t) => now.getTime() - t < 3600_000).length >= RESETS_PER_HOUR;
}

export function setPasswordByLink(command: SetPasswordByLink, user: ActiveUser): Decision {
  if (!command.site.builtinAuth) return builtinDisabled();
  const changed: AccountsEventData[] = [{ type: 'PasswordChanged', data: { via: command.via } }];
  const address = user.emails.find((e) => e.email === command.email);
  // The set-password link went to the address: following it proves the user reads it.
  if (command.via === 'set-password-link' && address && !address.verified) {
    return [
      ...changed,
      { type: 'EmailVerified', data: { email: command.email, method: 'set-password-link' } },
    ];
  }
  return changed;
}

export function changePassword(command: ChangePassword): Decision {
  if (!command.site.builtinAuth) return builtinDisabled();
  return [{ type: 'PasswordChanged', data: { via: 'user' } }];
}

export function requestPasswordReset(command: RequestPasswordReset, user: ActiveUser): Decision {
  const unavailable = passwordResetUnavailable(command.site);
  if (unavailable) return unavailable;
  const address = user.emails.find((e) => e.email === command.email);
  if (!address) return emailNotFound(command.email);
  // As in Sourcegraph, a reset link only goes to an address the user has proven.
  if (!address.verified) return refuse('email-not-verified', `${command.email} is not verified`, 'email');
  if (resetTooSoon(address.resetRequestedAt, command.now)) {
    return refuse(
      'sent-too-recently',
      'a password reset email was sent to this address too recently; try again later',
      'email',
    );
  }
  return [
    {
      type: 'PasswordResetRequested',
      data: {
        email: command.email,
        token: command.seal('PasswordResetRequested'),
        expiresAt: expires(command.now, 'PasswordResetRequested'),
      },
    },
  ];
}

/**
 * Why no password reset can be requested on this site at all, whoever asks: without builtin auth
 * (single sign-on) there are no passwords, and without SMTP the link could not be sent.
 */
export function passwordResetUnavailable(site: SitePolicy): Refusal | null {
  if (!site.builtinAuth) return builtinDisabled();
  if (!site.smtpConfigured) return smtpNotConfigured('no reset link');
  return null;
}
