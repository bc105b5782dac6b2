import type { AccountsEventData } from '@sitemail/contracts';
import type { UserCommand } from './commands.ts';
import { type Refusal, refuse } from './refusals.ts';
import type { ActiveUser, Sealer, SitePolicy, UserState } from './types.ts';

/** How long each kind of link stays valid. The reference product's reset links last 4 hours. */
export const linkLifetimes = {
  EmailVerificationRequested: 24 * 3600_000,
  PasswordSetLinkRequested: 72 * 3600_000,
  PasswordResetRequested: 4 * 3600_000,
  UserInvited: 7 * 24 * 3600_000,
} as const;

/** The reference product's limits: one verification email a minute per address, 3 unverified addresses. */
export const VERIFICATION_RESEND_INTERVAL_MS = 60_000;
export const MAX_UNVERIFIED_EMAILS = 3;

export type Decision = AccountsEventData[] | Refusal;

const expires = (now: Date, kind: keyof typeof linkLifetimes) =>
  new Date(now.getTime() + linkLifetimes[kind]).toISOString();

const notFound = () => refuse('user-not-found', 'user not found');
const emailNotFound = (email: string) =>
  refuse('email-not-found', `the user has no address ${email}`, 'email');

/**
 * Decides which events a command produces on a user's stream, or why it is refused. Pure: the
 * time, the site policy, fresh ids and the token sealer all come in the command.
 *
 * A primary address must be verified to become primary (as in the reference product: "primary
 * email must be verified"): otherwise anyone could point a user's important account email at an
 * address they never proved. The address a user is created with is primary from the start even
 * when unverified; the notifications policy then suppresses product email until it is verified.
 */
export function decide(command: UserCommand, state: UserState): Decision {
  if (command.type === 'CreateUser') {
    if (state.status !== 'none') return refuse('user-exists', 'the user already exists', 'userId');
    return createUser(command);
  }
  if (state.status !== 'active') return notFound();
  const user: ActiveUser = state;
  const find = (email: string) => user.emails.find((e) => e.email === email);

  switch (command.type) {
    case 'AddEmail': {
      if (find(command.email))
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
    case 'RemoveEmail': {
      if (!find(command.email)) return emailNotFound(command.email);
      if (user.primaryEmail === command.email) {
        return refuse(
          'cannot-remove-primary-email',
          'the primary address cannot be removed; make another primary first',
          'email',
        );
      }
      return [{ type: 'EmailRemoved', data: { email: command.email } }];
    }
    case 'SetPrimaryEmail': {
      const address = find(command.email);
      if (!address) return emailNotFound(command.email);
      if (user.primaryEmail === command.email) return [];
      if (!address.verified)
        return refuse('primary-email-must-be-verified', 'primary email must be verified', 'email');
      return [
        { type: 'PrimaryEmailChanged', data: { email: command.email, previousEmail: user.primaryEmail } },
      ];
    }
    case 'RequestEmailVerification': {
      const address = find(command.email);
      if (!address) return emailNotFound(command.email);
      if (address.verified)
        return refuse('email-already-verified', `${command.email} is already verified`, 'email');
      if (!command.site.smtpConfigured) {
        return refuse(
          'smtp-not-configured',
          'no SMTP server configured (in email.smtp): no email can be sent',
        );
      }
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
    case 'VerifyEmailByLink': {
      const address = find(command.email);
      if (!address) return emailNotFound(command.email);
      if (address.verified) return [];
      return [{ type: 'EmailVerified', data: { email: command.email, method: 'verification-link' } }];
    }
    case 'SetEmailVerified': {
      const address = find(command.email);
      if (!address) return emailNotFound(command.email);
      if (address.verified === command.verified) return [];
      return command.verified
        ? [{ type: 'EmailVerified', data: { email: command.email, method: 'site-admin' } }]
        : [{ type: 'EmailUnverified', data: { email: command.email, by: command.by } }];
    }
    case 'SetPasswordByLink': {
      if (!command.site.builtinAuth) return builtinDisabled();
      const changed: AccountsEventData[] = [{ type: 'PasswordChanged', data: { via: command.via } }];
      const address = find(command.email);
      // The set-password link went to the address: following it proves the user reads it.
      if (command.via === 'set-password-link' && address && !address.verified) {
        return [
          ...changed,
          { type: 'EmailVerified', data: { email: command.email, method: 'set-password-link' } },
        ];
      }
      return changed;
    }
    case 'ChangePassword': {
      if (!command.site.builtinAuth) return builtinDisabled();
      return [{ type: 'PasswordChanged', data: { via: 'user' } }];
    }
    case 'RequestPasswordReset': {
      if (!command.site.builtinAuth) return builtinDisabled();
      if (!command.site.smtpConfigured) {
        return refuse(
          'smtp-not-configured',
          'no SMTP server configured (in email.smtp): no reset link can be sent',
        );
      }
      const address = find(command.email);
      if (!address) return emailNotFound(command.email);
      // As in the reference product, a reset link only goes to an address the user has proven.
      if (!address.verified) return refuse('email-not-verified', `${command.email} is not verified`, 'email');
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
    case 'CreateApiKey': {
      if (user.apiKeys.some((k) => k.name === command.name)) {
        return refuse(
          'api-key-name-taken',
          `the user already has an API key named "${command.name}"`,
          'name',
        );
      }
      return [
        {
          type: 'ApiKeyCreated',
          data: {
            keyId: command.keyId,
            name: command.name,
            createdBy: command.by,
            secretSha256: command.secretSha256,
          },
        },
      ];
    }
    case 'RevokeApiKey': {
      if (!user.apiKeys.some((k) => k.keyId === command.keyId)) {
        return refuse('api-key-not-found', 'no such API key (unknown or already revoked)', 'keyId');
      }
      return [{ type: 'ApiKeyRevoked', data: { keyId: command.keyId, revokedBy: command.by } }];
    }
    case 'SetSiteAdmin': {
      // As in the reference product: an admin cannot demote (or promote) themselves, so a site
      // cannot lose its last admin by accident.
      if (command.by === user.userId) {
        return refuse(
          'cannot-change-own-site-admin',
          'site admins cannot change their own site admin status',
          'siteAdmin',
        );
      }
      if (user.siteAdmin === command.siteAdmin) return [];
      return [{ type: 'SiteAdminChanged', data: { siteAdmin: command.siteAdmin, changedBy: command.by } }];
    }
    case 'InviteUser': {
      if (find(command.email))
        return refuse('cannot-invite-own-email', 'you cannot invite your own address', 'email');
      const pending = user.invitations.some(
        (i) =>
          i.email === command.email &&
          i.organization === command.organization &&
          Date.parse(i.expiresAt) > command.now.getTime(),
      );
      if (pending) {
        return refuse(
          'already-invited',
          `${command.email} already has a pending invitation${command.organization ? ` to ${command.organization}` : ''}`,
          'email',
        );
      }
      return [
        {
          type: 'UserInvited',
          data: {
            invitationId: command.invitationId,
            email: command.email,
            inviterUsername: user.username,
            ...(command.organization === undefined ? {} : { organization: command.organization }),
            ...(command.inviteeUserId === undefined ? {} : { inviteeUserId: command.inviteeUserId }),
            token: command.seal('UserInvited'),
            expiresAt: expires(command.now, 'UserInvited'),
          },
        },
      ];
    }
    default: {
      const unexpected: never = command;
      throw new Error(`unknown command ${(unexpected as { type: string }).type}`);
    }
  }
}

/**
 * Why no password reset can be requested on this site at all, whoever asks: without builtin auth
 * (single sign-on) there are no passwords, and without SMTP the link could not be sent.
 */
export function passwordResetUnavailable(site: SitePolicy): Refusal | null {
  if (!site.builtinAuth) return builtinDisabled();
  if (!site.smtpConfigured) {
    return refuse(
      'smtp-not-configured',
      'no SMTP server configured (in email.smtp): no reset link can be sent',
    );
  }
  return null;
}

const builtinDisabled = () =>
  refuse(
    'builtin-auth-disabled',
    'password sign-in is not enabled on this site (no builtin entry in auth.providers)',
  );

function verificationRequest(email: string, now: Date, seal: Sealer): AccountsEventData {
  return {
    type: 'EmailVerificationRequested',
    data: {
      email,
      token: seal('EmailVerificationRequested'),
      expiresAt: expires(now, 'EmailVerificationRequested'),
    },
  };
}

function createUser(command: Extract<UserCommand, { type: 'CreateUser' }>): Decision {
  const { site, origin } = command;
  if (origin === 'builtin-signup' && !site.builtinAuth) return builtinDisabled();
  // DESIGN.md: with SMTP configured, builtin sign-ups and admin-created users start unverified and
  // get a link; without SMTP nothing can be sent, so the address is recorded as verified. External
  // provider and API-created users are verified; so is an address proven by an invitation link.
  const needsLink =
    site.smtpConfigured &&
    (origin === 'builtin-signup' || origin === 'site-admin') &&
    !command.emailProvenByInvitation;
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
