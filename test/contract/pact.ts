/**
 * What both sides of the notifications ← accounts message pact share: the participants, where the
 * pact file lives, and the provider states and message descriptions the pact is written in.
 * The consumer test writes the pact; the provider test verifies accounts against it.
 */
import { fileURLToPath } from 'node:url';
import type { AccountsEventType } from '@sitemail/contracts';

export const CONSUMER = 'notifications';
export const PROVIDER = 'accounts';
export const PACT_DIR = fileURLToPath(new URL('../../contracts/pacts/', import.meta.url));
export const PACT_FILE = `${PACT_DIR}${CONSUMER}-${PROVIDER}.json`;

/** The states accounts must be put in; each is set up by the provider test through accounts' own command handler. */
export const states = {
  builtinSignUp: 'a user signed up with builtin auth on a site with SMTP configured',
  externalUser: 'a user signed in for the first time through an external auth provider',
  adminCreatedUser: 'a site admin created a user through the admin UI flow on a site with SMTP configured',
  emailAdded: 'a user with a verified primary address added a second address',
  emailVerifiedByLink: 'a user followed the verification link of an added address',
  emailUnverifiedByAdmin: "a site admin marked a user's verified address unverified",
  primaryChanged: 'a user made a verified second address primary',
  passwordReset: 'a builtin user with a verified primary address asked for a password reset',
  apiKeyCreated: 'a user with a verified primary address created an API key',
  apiKeyRevoked: 'a user revoked one of its API keys',
  siteAdminGranted: 'a site admin made another user site admin',
  invitedNewAddress: 'a user invited an address that belongs to no user to an organization',
  invitedExistingUser: 'a user invited an existing user to an organization',
  userDeleted: 'a site admin deleted a user who had two addresses and an API key',
} as const;
export type ProviderState = (typeof states)[keyof typeof states];

/** One message of the pact: its description, the state it is produced in, and the event type it carries. */
export interface PactMessage {
  description: string;
  state: ProviderState;
  type: AccountsEventType;
}

export const messages = {
  userCreatedBuiltin: {
    description: 'UserCreated for a builtin sign-up, its address unverified',
    state: states.builtinSignUp,
    type: 'UserCreated',
  },
  verificationRequested: {
    description: 'EmailVerificationRequested for the address a builtin user signed up with',
    state: states.builtinSignUp,
    type: 'EmailVerificationRequested',
  },
  userCreatedExternal: {
    description: 'UserCreated for an external-provider user, its address verified',
    state: states.externalUser,
    type: 'UserCreated',
  },
  setPasswordLink: {
    description: 'PasswordSetLinkRequested for a user a site admin created',
    state: states.adminCreatedUser,
    type: 'PasswordSetLinkRequested',
  },
  emailAdded: {
    description: 'EmailAdded for a second address',
    state: states.emailAdded,
    type: 'EmailAdded',
  },
  emailVerified: {
    description: 'EmailVerified by a verification link',
    state: states.emailVerifiedByLink,
    type: 'EmailVerified',
  },
  emailUnverified: {
    description: 'EmailUnverified by a site admin',
    state: states.emailUnverifiedByAdmin,
    type: 'EmailUnverified',
  },
  primaryChanged: {
    description: 'PrimaryEmailChanged to a verified address',
    state: states.primaryChanged,
    type: 'PrimaryEmailChanged',
  },
  passwordReset: {
    description: 'PasswordResetRequested for a verified primary address',
    state: states.passwordReset,
    type: 'PasswordResetRequested',
  },
  apiKeyCreated: {
    description: 'ApiKeyCreated with the key hash and no secret',
    state: states.apiKeyCreated,
    type: 'ApiKeyCreated',
  },
  apiKeyRevoked: { description: 'ApiKeyRevoked', state: states.apiKeyRevoked, type: 'ApiKeyRevoked' },
  siteAdminChanged: {
    description: 'SiteAdminChanged granting site admin',
    state: states.siteAdminGranted,
    type: 'SiteAdminChanged',
  },
  invitedNewAddress: {
    description: 'UserInvited for an address of no user, to an organization',
    state: states.invitedNewAddress,
    type: 'UserInvited',
  },
  invitedExistingUser: {
    description: 'UserInvited for an existing user, to an organization',
    state: states.invitedExistingUser,
    type: 'UserInvited',
  },
  userDeleted: {
    description: 'UserDeleted by a site admin, carrying no personal data',
    state: states.userDeleted,
    type: 'UserDeleted',
  },
} as const satisfies Record<string, PactMessage>;

/** The Kafka message key travels in the pact as this metadata entry, beside the CloudEvents headers. */
export const KEY_METADATA = 'kafka_key';
