import type { AccountsEventData, AccountsEventType, SealedToken, UserOrigin } from '@sitemail/contracts';

/**
 * An event as the user aggregate sees it in its history: its body, its stream (user id) and time.
 * `shredded`: its personal fields could not be read because the user's data key was destroyed
 * (the user was deleted; see store/personal-data.ts); the fields are absent from `data`.
 */
export type UserEvent = AccountsEventData & { userId: string; time: string; shredded?: true };

/** Events that carry a link token, sealed for the notifications service. */
export type LinkEventType = Extract<
  AccountsEventType,
  'EmailVerificationRequested' | 'PasswordSetLinkRequested' | 'PasswordResetRequested' | 'UserInvited'
>;

/**
 * Seals a fresh link token for an event of the given type. The command handler supplies it (it
 * holds the key and the randomness), so that `decide` stays a pure function of its inputs.
 */
export type Sealer = (eventType: LinkEventType) => SealedToken;

/** What `decide` needs to know of the site config, already reduced to the two facts that matter. */
export interface SitePolicy {
  /** `email.smtp` is present: addresses start unverified and links are emailed. */
  smtpConfigured: boolean;
  /** `auth.providers` has a builtin entry: password links and resets exist. */
  builtinAuth: boolean;
}

export interface EmailState {
  email: string;
  verified: boolean;
  /** When a verification email was last requested for the address (ISO), for "sent too recently". */
  verificationRequestedAt?: string;
  /** When reset links were last sent to the address (ISO, newest last, the last hour's at most), for the reset throttle. */
  resetRequestedAt?: string[];
}

export interface ApiKeyState {
  keyId: string;
  name: string;
}

export interface InvitationState {
  invitationId: string;
  email: string;
  organization?: string;
  expiresAt: string;
}

export type UserState =
  | { status: 'none' }
  | {
      status: 'active';
      userId: string;
      username: string;
      origin: UserOrigin;
      siteAdmin: boolean;
      authProviderType: string;
      hasPassword: boolean;
      /** In the order they were added; the first is the address the user was created with. */
      emails: EmailState[];
      primaryEmail: string;
      /** Active keys only: a revoked key is gone for every purpose. */
      apiKeys: ApiKeyState[];
      invitations: InvitationState[];
    }
  /** Deleted for real: nothing personal is left to fold (a stream of shredded events ends here too). */
  | { status: 'deleted'; userId: string };

export type DeletedUser = Extract<UserState, { status: 'deleted' }>;

export type ActiveUser = Extract<UserState, { status: 'active' }>;

export const initialUserState: UserState = { status: 'none' };
