import type { AccountsEventData } from '@sitemail/contracts';
import type {
  AddEmail,
  RemoveEmail,
  RequestEmailVerification,
  SetEmailVerified,
  SetPrimaryEmail,
  VerifyEmailByLink,
} from './commands.ts';
import type { Decision } from './decision.ts';
import { verificationRequest } from './links.ts';
import { emailNotFound, refuse, smtpNotConfigured } from './refusals.ts';
import type { ActiveUser } from './types.ts';

/** Sourcegraph's limits: one verification email a minute per address, 3 unverified addresses. */
export const VERIFICATION_RESEND_INTERVAL_MS = 60_000;
export const MAX_UNVERIFIED_EMAILS = 3;

const find = (user: ActiveUser, email: string) => user.emails.find((e) => e.email === email);

export function addEmail(command: AddEmail, user: ActiveUser): Decision {
  if (find(user, command.email))
    return refuse('email-exists', `the user already has the address ${command.email}`, 'email');
  if (user.emails.filter((e) => !e.verified).length >= MAX_UNVERIFIED_EMAILS) {
    return refuse(
      'too-many-unverified-emails',
      `too many unverified addresses (at most ${MAX_UNVERIFIED_EMAILS}): verify or remove one first`,
      'email',
    );
  }
  const added: AccountsEventData[] = [{ type: 'EmailAdded', data: { email: command.email } }];
  if (!command.site.smtpConfigured) return added;
  return [...added, verificationRequest(command.email, command.now, command.seal)];
}

export function removeEmail(command: RemoveEmail, user: ActiveUser): Decision {
  if (!find(user, command.email)) return emailNotFound(command.email);
  if (user.primaryEmail === command.email) {
    return refuse(
      'cannot-remove-primary-email',
      'the primary address cannot be removed; make another primary first',
      'email',
    );
  }
  return [{ type: 'EmailRemoved', data: { email: command.email } }];
}

/**
 * A primary address must be verified to become primary (as in Sourcegraph: "primary email must
 * be verified"): otherwise anyone could point a user's important account email at an address
 * they never proved. The address a user is created with is primary from the start even when
 * unverified; the notifications policy then suppresses product email until it is verified.
 */
export function setPrimaryEmail(command: SetPrimaryEmail, user: ActiveUser): Decision {
  const address = find(user, command.email);
  if (!address) return emailNotFound(command.email);
  if (user.primaryEmail === command.email) return [];
  if (!address.verified)
    return refuse('primary-email-must-be-verified', 'primary email must be verified', 'email');
  return [{ type: 'PrimaryEmailChanged', data: { email: command.email, previousEmail: user.primaryEmail } }];
}

export function requestEmailVerification(command: RequestEmailVerification, user: ActiveUser): Decision {
  const address = find(user, command.email);
  if (!address) return emailNotFound(command.email);
  if (address.verified)
    return refuse('email-already-verified', `${command.email} is already verified`, 'email');
  if (!command.site.smtpConfigured) return smtpNotConfigured('no email');
  if (
    address.verificationRequestedAt !== undefined &&
    command.now.getTime() - Date.parse(address.verificationRequestedAt) < VERIFICATION_RESEND_INTERVAL_MS
  ) {
    return refuse(
      'sent-too-recently',
      'a verification email was sent too recently; try again in a minute',
      'email',
    );
  }
  return [verificationRequest(command.email, command.now, command.seal)];
}

export function verifyEmailByLink(command: VerifyEmailByLink, user: ActiveUser): Decision {
  const address = find(user, command.email);
  if (!address) return emailNotFound(command.email);
  if (address.verified) return [];
  return [{ type: 'EmailVerified', data: { email: command.email, method: 'verification-link' } }];
}

export function setEmailVerified(command: SetEmailVerified, user: ActiveUser): Decision {
  const address = find(user, command.email);
  if (!address) return emailNotFound(command.email);
  if (address.verified === command.verified) return [];
  return command.verified
    ? [{ type: 'EmailVerified', data: { email: command.email, method: 'site-admin' } }]
    : [{ type: 'EmailUnverified', data: { email: command.email, by: command.by } }];
}
