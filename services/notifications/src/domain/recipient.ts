import type { AccountsEvent } from '@sitemail/contracts';

export interface RecipientAddress {
  email: string;
  verified: boolean;
}

export interface RecipientApiKey {
  keyId: string;
  /** SHA-256 of the key's secret, as accounts publishes it; admin requests are authenticated against it. */
  secretSha256: string;
  revoked: boolean;
}

/** What notifications knows about a user, projected from the accounts topic. */
export interface Recipient {
  userId: string;
  username: string;
  displayName?: string;
  /** Every address of the user, in the order they were added. */
  addresses: RecipientAddress[];
  primaryEmail: string;
  siteAdmin: boolean;
  authProvider: string;
  apiKeys: RecipientApiKey[];
  /** Position of the last event of the user's stream applied to this state. */
  position: number;
  /**
   * The user was deleted (UserDeleted): a tombstone that keeps only the id and position, so no
   * later or replayed event of the stream brings the personal fields back (see `deletedRecipient`).
   */
  deleted?: true;
}

/**
 * What is left of a deleted user: no username, address or key. Shaped as a Recipient so the policy
 * reads it like any other (it has no primary address) and then suppresses everything `user-deleted`.
 */
export const deletedRecipient = (userId: string, position: number): Recipient => ({
  userId,
  username: '',
  addresses: [],
  primaryEmail: '',
  siteAdmin: false,
  authProvider: '',
  apiKeys: [],
  position,
  deleted: true,
});

/** Addresses compare case-insensitively (the domain part is case-insensitive; accounts treats the whole as one). */
export const sameAddress = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export function findAddress(recipient: Recipient, email: string): RecipientAddress | undefined {
  return recipient.addresses.find((a) => sameAddress(a.email, email));
}

export function primaryAddress(recipient: Recipient): RecipientAddress | undefined {
  return findAddress(recipient, recipient.primaryEmail);
}

const withAddress = (
  r: Recipient,
  email: string,
  change: (a: RecipientAddress) => RecipientAddress,
): Recipient => ({
  ...r,
  addresses: r.addresses.map((a) => (sameAddress(a.email, email) ? change(a) : a)),
});

/**
 * Applies one event of the user's stream to the recipient. Events of other users' streams that
 * carry no change to this recipient (UserInvited is in the inviter's stream) only move the position.
 * An event at or below the applied position is a replay and changes nothing; pure, so the same
 * function rebuilds the projection from the topic. UserDeleted folds any state (none included: the
 * topic may hold only the deletion once its retention removed the rest) into the tombstone.
 */
export function evolveRecipient(state: Recipient | undefined, event: AccountsEvent): Recipient | undefined {
  // Deleted is final: nothing follows UserDeleted in a stream, and a replay of older events
  // (the topic read from offset 0) must not bring the personal data back.
  if (state?.deleted) return state;
  if (event.type === 'UserDeleted')
    return deletedRecipient(event.userId, Math.max(event.position, state?.position ?? 0));
  if (state && event.position <= state.position) return state;
  if (!state) {
    // Only a user's first event creates the recipient; anything else before it cannot be placed.
    if (event.type !== 'UserCreated') return undefined;
    return {
      userId: event.userId,
      username: event.data.username,
      ...(event.data.displayName !== undefined ? { displayName: event.data.displayName } : {}),
      addresses: [{ email: event.data.email, verified: event.data.emailVerified }],
      primaryEmail: event.data.email,
      siteAdmin: event.data.siteAdmin,
      authProvider: event.data.authProvider.type,
      apiKeys: [],
      position: event.position,
    };
  }
  const s: Recipient = { ...state, position: event.position };
  switch (event.type) {
    case 'UserCreated':
      // A second UserCreated in one stream would be a producer bug; the first one stands.
      return s;
    case 'EmailAdded':
      return findAddress(s, event.data.email)
        ? s
        : { ...s, addresses: [...s.addresses, { email: event.data.email, verified: false }] };
    case 'EmailVerified':
      return withAddress(s, event.data.email, (a) => ({ ...a, verified: true }));
    case 'EmailUnverified':
      return withAddress(s, event.data.email, (a) => ({ ...a, verified: false }));
    case 'EmailRemoved':
      return { ...s, addresses: s.addresses.filter((a) => !sameAddress(a.email, event.data.email)) };
    case 'PrimaryEmailChanged': {
      const known = findAddress(s, event.data.email);
      return {
        ...s,
        primaryEmail: known?.email ?? event.data.email,
        addresses: known ? s.addresses : [...s.addresses, { email: event.data.email, verified: false }],
      };
    }
    case 'ApiKeyCreated':
      return {
        ...s,
        apiKeys: [
          ...s.apiKeys.filter((k) => k.keyId !== event.data.keyId),
          { keyId: event.data.keyId, secretSha256: event.data.secretSha256, revoked: false },
        ],
      };
    case 'ApiKeyRevoked':
      return {
        ...s,
        apiKeys: s.apiKeys.map((k) => (k.keyId === event.data.keyId ? { ...k, revoked: true } : k)),
      };
    case 'SiteAdminChanged':
      return { ...s, siteAdmin: event.data.siteAdmin };
    case 'EmailVerificationRequested':
    case 'PasswordSetLinkRequested':
    case 'PasswordResetRequested':
    case 'PasswordChanged':
    case 'UserInvited':
      return s;
    // UserDeleted is handled above, before the position check: a deletion always wins.
    default: {
      const unknownEvent: never = event;
      throw new Error(`evolveRecipient: unhandled event ${(unknownEvent as { type: string }).type}`);
    }
  }
}

/**
 * The recipient projection as one object: the state a user's stream folds into (nothing before
 * its UserCreated) and the step that applies one event. The store keeps the folded state per user.
 */
export const recipientProjection: {
  evolve(state: Recipient | undefined, event: AccountsEvent): Recipient | undefined;
  initialState(): Recipient | undefined;
} = {
  evolve: evolveRecipient,
  initialState: () => undefined,
};
