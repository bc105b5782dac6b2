import { RESETS_PER_HOUR } from './passwords.ts';
import type { ActiveUser, EmailState, UserEvent, UserState } from './types.ts';

const withEmail = (user: ActiveUser, email: string, change: (e: EmailState) => EmailState): ActiveUser => ({
  ...user,
  emails: user.emails.map((e) => (e.email === email ? change(e) : e)),
});

/** Folds one event into the user's state. Events are facts: evolve never refuses. */
export function evolve(state: UserState, event: UserEvent): UserState {
  // Only a deletion destroys the data key, so an unreadable event means the user is deleted; and
  // nothing after a deletion brings the user back.
  if (event.shredded || state.status === 'deleted') return { status: 'deleted', userId: event.userId };
  if (event.type === 'UserCreated') {
    const d = event.data;
    return {
      status: 'active',
      userId: event.userId,
      username: d.username,
      origin: d.origin,
      siteAdmin: d.siteAdmin,
      authProviderType: d.authProvider.type,
      hasPassword: d.origin === 'builtin-signup',
      emails: [{ email: d.email, verified: d.emailVerified }],
      primaryEmail: d.email,
      apiKeys: [],
      invitations: [],
    };
  }
  // Any other event on a stream without UserCreated would be a corrupt stream; keep the state as is.
  if (state.status !== 'active') return state;
  switch (event.type) {
    case 'EmailAdded':
      return { ...state, emails: [...state.emails, { email: event.data.email, verified: false }] };
    case 'EmailVerificationRequested':
      return withEmail(state, event.data.email, (e) => ({ ...e, verificationRequestedAt: event.time }));
    case 'EmailVerified':
      return withEmail(state, event.data.email, (e) => ({ ...e, verified: true }));
    case 'EmailUnverified':
      return withEmail(state, event.data.email, (e) => ({ ...e, verified: false }));
    case 'EmailRemoved':
      return { ...state, emails: state.emails.filter((e) => e.email !== event.data.email) };
    case 'PrimaryEmailChanged':
      return { ...state, primaryEmail: event.data.email };
    case 'PasswordResetRequested':
      return withEmail(state, event.data.email, (e) => ({
        ...e,
        resetRequestedAt: [...(e.resetRequestedAt ?? []), event.time].slice(-RESETS_PER_HOUR),
      }));
    case 'PasswordSetLinkRequested':
      return state;
    case 'PasswordChanged':
      return { ...state, hasPassword: true };
    case 'ApiKeyCreated':
      return { ...state, apiKeys: [...state.apiKeys, { keyId: event.data.keyId, name: event.data.name }] };
    case 'ApiKeyRevoked':
      return { ...state, apiKeys: state.apiKeys.filter((k) => k.keyId !== event.data.keyId) };
    case 'SiteAdminChanged':
      return { ...state, siteAdmin: event.data.siteAdmin };
    case 'UserInvited': {
      const { invitationId, email, organization, expiresAt } = event.data;
      return {
        ...state,
        invitations: [
          ...state.invitations,
          organization === undefined
            ? { invitationId, email, expiresAt }
            : { invitationId, email, organization, expiresAt },
        ],
      };
    }
    case 'UserDeleted':
      return { status: 'deleted', userId: state.userId };
    default: {
      const unexpected: never = event;
      throw new Error(`unknown event ${(unexpected as { type: string }).type}`);
    }
  }
}
