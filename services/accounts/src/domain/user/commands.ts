import type { UserOrigin } from '@sitemail/contracts';
import type { Sealer, SitePolicy } from './types.ts';

/** Every command carries the time it is decided at: `decide` never reads a clock. */
interface At {
  now: Date;
}

export interface CreateUser extends At {
  type: 'CreateUser';
  userId: string;
  username: string;
  displayName?: string;
  email: string;
  origin: UserOrigin;
  /** `{ type: 'builtin' }` for sign-up, admin- and API-created users; the provider otherwise. */
  authProvider: { type: string; externalId?: string };
  /** Whether a builtin password comes with the command (sign-up); its hash never enters an event. */
  withPassword: boolean;
  /** No user exists yet on the site: the first user becomes site admin. */
  firstUser: boolean;
  /**
   * The invitation whose code came with the sign-up (checked by the handler): the address it
   * invited, and whether its email went to that address itself (nobody held it verified) or to an
   * existing user's primary address. Only the former proves the new user reads the address.
   */
  invitation?: { email: string; mailedToInvitedAddress: boolean };
  site: SitePolicy;
  seal: Sealer;
}

export interface AddEmail extends At {
  type: 'AddEmail';
  email: string;
  site: SitePolicy;
  seal: Sealer;
}

export interface RemoveEmail extends At {
  type: 'RemoveEmail';
  email: string;
}

export interface SetPrimaryEmail extends At {
  type: 'SetPrimaryEmail';
  email: string;
}

export interface RequestEmailVerification extends At {
  type: 'RequestEmailVerification';
  email: string;
  site: SitePolicy;
  seal: Sealer;
}

/** The user followed a verification link; the handler has checked the token already. */
export interface VerifyEmailByLink extends At {
  type: 'VerifyEmailByLink';
  email: string;
}

/** A site admin marks an address verified or unverified (`setUserEmailVerified`). */
export interface SetEmailVerified extends At {
  type: 'SetEmailVerified';
  email: string;
  verified: boolean;
  by: string;
}

/** The user followed a set-password or reset link (token checked by the handler) and chose a password. */
export interface SetPasswordByLink extends At {
  type: 'SetPasswordByLink';
  via: 'set-password-link' | 'reset-link';
  /** The address the link was sent to: a set-password link also verifies it. */
  email: string;
  site: SitePolicy;
}

/** The user changes their own password (the handler has checked the current one). */
export interface ChangePassword extends At {
  type: 'ChangePassword';
  site: SitePolicy;
}

export interface RequestPasswordReset extends At {
  type: 'RequestPasswordReset';
  email: string;
  site: SitePolicy;
  seal: Sealer;
}

export interface CreateApiKey extends At {
  type: 'CreateApiKey';
  keyId: string;
  name: string;
  /** SHA-256 of the secret; the secret itself never reaches the domain. */
  secretSha256: string;
  by: string;
}

export interface RevokeApiKey extends At {
  type: 'RevokeApiKey';
  keyId: string;
  by: string;
}

export interface SetSiteAdmin extends At {
  type: 'SetSiteAdmin';
  siteAdmin: boolean;
  by: string;
}

/** Decided on the inviter's stream. */
export interface InviteUser extends At {
  type: 'InviteUser';
  invitationId: string;
  email: string;
  organization?: string;
  /**
   * The user who holds the address now, verified or not (looked up by the handler). Only a
   * verified holder is the invitee; an unverified hold proves nothing (see `invitations.ts`).
   */
  holder?: { userId: string; verified: boolean };
  seal: Sealer;
}

/**
 * Deleting the user for real (an erasure request): the handler has checked who asks and what they
 * proved, and counted the site admins; the decider refuses or emits `UserDeleted`.
 */
export interface DeleteUser extends At {
  type: 'DeleteUser';
  /** The user themself, or a site admin deleting another user. */
  deletedBy: 'self' | 'site-admin';
  /**
   * The re-confirmation, as the handler checked it: for `self`, the user's own password (a user
   * without one proves it with their own API key, the one the request came with); for
   * `site-admin`, the admin's key. `missing`: a user with a password sent none.
   */
  credential: 'valid' | 'wrong' | 'missing';
  /** Site admins other than this user (read model): the site's last admin cannot be deleted. */
  otherSiteAdmins: number;
}

export type UserCommand =
  | CreateUser
  | AddEmail
  | RemoveEmail
  | SetPrimaryEmail
  | RequestEmailVerification
  | VerifyEmailByLink
  | SetEmailVerified
  | SetPasswordByLink
  | ChangePassword
  | RequestPasswordReset
  | CreateApiKey
  | RevokeApiKey
  | SetSiteAdmin
  | InviteUser
  | DeleteUser;
