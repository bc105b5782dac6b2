import type { AccountsEventData } from '@sitemail/contracts';
import type { CreateUser } from './commands.ts';
import type { Decision } from './decision.ts';
import { expires, verificationRequest } from './links.ts';
import { builtinDisabled } from './refusals.ts';

/**
 * Following an invitation link proves control of the address its email was sent to, nothing
 * more: the sign-up's address is proven only when the invitation named it and was mailed to it.
 * An invitation mailed to an existing user's primary address proves nothing about the invited one.
 */
const provenByInvitation = (command: CreateUser) =>
  command.invitation?.mailedToInvitedAddress === true && command.invitation.email === command.email;

/**
 * A new user: who starts verified, who gets which link. With SMTP configured, builtin sign-ups
 * and admin-created users start unverified and get a link; without SMTP nothing can be sent, so
 * the address is recorded as verified. External provider and API-created users are verified; so
 * is an address proven by an invitation link (docs/architecture.md, after Sourcegraph's admin
 * documentation).
 */
export function createUser(command: CreateUser): Decision {
  const { site, origin } = command;
  if (origin === 'builtin-signup' && !site.builtinAuth) return builtinDisabled();
  const needsLink =
    site.smtpConfigured &&
    (origin === 'builtin-signup' || origin === 'site-admin') &&
    !provenByInvitation(command);
  const created: AccountsEventData = {
    type: 'UserCreated',
    data: {
      username: command.username,
      ...(command.displayName === undefined ? {} : { displayName: command.displayName }),
      email: command.email,
      emailVerified: !needsLink,
      origin,
      authProvider: command.authProvider,
      siteAdmin: command.firstUser,
    },
  };
  if (!needsLink) return [created];
  // The admin UI flow sends a set-password link, which also verifies the address; on a
  // single-sign-on site there is no password to set, so a plain verification link goes instead.
  if (origin === 'site-admin' && site.builtinAuth) {
    return [
      created,
      {
        type: 'PasswordSetLinkRequested',
        data: {
          email: command.email,
          token: command.seal('PasswordSetLinkRequested'),
          expiresAt: expires(command.now, 'PasswordSetLinkRequested'),
        },
      },
    ];
  }
  return [created, verificationRequest(command.email, command.now, command.seal)];
}
