import Type, { type Static, type TSchema } from 'typebox';
import { EmailAddress, SealedToken, Timestamp, Uuid } from './common.ts';

/** Schema version of the event bodies below. Bump only with a new topic version (see README). */
export const ACCOUNTS_SCHEMA_VERSION = 1 as const;

const envelope = <K extends string, D extends TSchema>(type: K, data: D, description: string) =>
  Type.Object(
    {
      id: Type.String({ ...Uuid, description: 'Unique event id; consumers deduplicate on it' }),
      type: Type.Literal(type),
      userId: Type.String({ ...Uuid, description: 'The user (aggregate) the event belongs to' }),
      position: Type.Integer({ minimum: 1, description: "Position in the user's stream, from 1" }),
      time: Timestamp,
      schemaVersion: Type.Literal(ACCOUNTS_SCHEMA_VERSION),
      data,
    },
    { $id: type, title: type, description },
  );

export const UserOrigin = Type.Union(
  [
    Type.Literal('builtin-signup'),
    Type.Literal('site-admin'),
    Type.Literal('external-provider'),
    Type.Literal('api'),
  ],
  { description: 'How the user came to exist; decides whether the first address starts verified' },
);
export type UserOrigin = Static<typeof UserOrigin>;

export const UserCreated = envelope(
  'UserCreated',
  Type.Object({
    username: Type.String({ minLength: 1, maxLength: 255 }),
    displayName: Type.Optional(Type.String({ maxLength: 255 })),
    email: EmailAddress,
    emailVerified: Type.Boolean({ description: 'Whether the first (primary) address starts verified' }),
    origin: UserOrigin,
    authProvider: Type.Object({
      type: Type.String({ minLength: 1, description: 'builtin, github, saml, ...' }),
      externalId: Type.Optional(Type.String({ minLength: 1 })),
    }),
    siteAdmin: Type.Boolean(),
  }),
  'A user was created. Its first address is its primary address.',
);

export const EmailAdded = envelope(
  'EmailAdded',
  Type.Object({ email: EmailAddress }),
  'An unverified address was added to the user.',
);

export const EmailVerificationRequested = envelope(
  'EmailVerificationRequested',
  Type.Object({ email: EmailAddress, token: SealedToken, expiresAt: Timestamp }),
  'A verification email should be sent to the (unverified) address.',
);

export const EmailVerified = envelope(
  'EmailVerified',
  Type.Object({
    email: EmailAddress,
    method: Type.Union([
      Type.Literal('verification-link'),
      Type.Literal('set-password-link'),
      Type.Literal('site-admin'),
    ]),
  }),
  'The address is now verified.',
);

export const EmailUnverified = envelope(
  'EmailUnverified',
  Type.Object({ email: EmailAddress, by: Uuid }),
  'A site admin marked the address unverified.',
);

export const EmailRemoved = envelope(
  'EmailRemoved',
  Type.Object({ email: EmailAddress }),
  'A (non-primary) address was removed from the user.',
);

export const PrimaryEmailChanged = envelope(
  'PrimaryEmailChanged',
  Type.Object({ email: EmailAddress, previousEmail: EmailAddress }),
  'The user chose another of its addresses as primary.',
);

export const PasswordSetLinkRequested = envelope(
  'PasswordSetLinkRequested',
  Type.Object({ email: EmailAddress, token: SealedToken, expiresAt: Timestamp }),
  'A site admin created the user; a set-password link should go to the address (which it verifies).',
);

export const PasswordResetRequested = envelope(
  'PasswordResetRequested',
  Type.Object({ email: EmailAddress, token: SealedToken, expiresAt: Timestamp }),
  'The user asked to reset a builtin password; a reset link should go to the primary address.',
);

export const PasswordChanged = envelope(
  'PasswordChanged',
  Type.Object({
    via: Type.Union([Type.Literal('set-password-link'), Type.Literal('reset-link'), Type.Literal('user')]),
  }),
  'The builtin password was set or changed. The hash is never in the event.',
);

export const ApiKeyCreated = envelope(
  'ApiKeyCreated',
  Type.Object({
    keyId: Uuid,
    name: Type.String({ minLength: 1, maxLength: 100 }),
    createdBy: Uuid,
    secretSha256: Type.String({
      pattern: '^[0-9a-f]{64}$',
      description:
        'SHA-256 of the 256-bit random secret, so services can authenticate the key without calling accounts. Never the secret.',
    }),
  }),
  'An API key was created for the user.',
);

export const ApiKeyRevoked = envelope(
  'ApiKeyRevoked',
  Type.Object({ keyId: Uuid, revokedBy: Uuid }),
  'An API key was revoked.',
);

export const SiteAdminChanged = envelope(
  'SiteAdminChanged',
  Type.Object({ siteAdmin: Type.Boolean(), changedBy: Uuid }),
  'The user was made site admin, or stopped being one.',
);

export const UserInvited = envelope(
  'UserInvited',
  Type.Object({
    invitationId: Uuid,
    email: EmailAddress,
    inviterUsername: Type.String({ minLength: 1 }),
    organization: Type.Optional(Type.String({ minLength: 1, maxLength: 255 })),
    inviteeUserId: Type.Optional(
      Type.String({ ...Uuid, description: 'Set when the address belongs to an existing user' }),
    ),
    token: SealedToken,
    expiresAt: Timestamp,
  }),
  "The user (the inviter; this is the inviter's stream) invited an address to the instance or to an organization.",
);

export const UserDeleted = envelope(
  'UserDeleted',
  Type.Object({
    deletedBy: Type.Union([Type.Literal('self'), Type.Literal('site-admin')], {
      description: 'Who asked: the user themself, or a site admin',
    }),
  }),
  'The user was deleted (an erasure request, GDPR art. 17). Every consumer MUST erase what it holds ' +
    'about the user (addresses, username, display name, external account ids, API keys, rendered ' +
    'email): it may keep only what carries no personal data (that an email existed, its status). ' +
    "The user's earlier events stay in accounts' store with their personal fields unreadable " +
    '(crypto-shredded); this event carries no personal data, and nothing follows it in the stream.',
);

export const accountsEventSchemas = {
  UserCreated,
  EmailAdded,
  EmailVerificationRequested,
  EmailVerified,
  EmailUnverified,
  EmailRemoved,
  PrimaryEmailChanged,
  PasswordSetLinkRequested,
  PasswordResetRequested,
  PasswordChanged,
  ApiKeyCreated,
  ApiKeyRevoked,
  SiteAdminChanged,
  UserInvited,
  UserDeleted,
} as const;

export type AccountsEventType = keyof typeof accountsEventSchemas;
export const accountsEventTypes = Object.keys(accountsEventSchemas) as AccountsEventType[];

export const AccountsEvent = Type.Union(Object.values(accountsEventSchemas), {
  $id: 'AccountsEvent',
  title: 'AccountsEvent',
});
export type AccountsEvent = {
  [K in AccountsEventType]: Static<(typeof accountsEventSchemas)[K]>;
}[AccountsEventType];
export type AccountsEventOf<K extends AccountsEventType> = Extract<AccountsEvent, { type: K }>;
/** What a decider produces: the event body, before the store gives it id, position and time. */
export type AccountsEventData<K extends AccountsEventType = AccountsEventType> = K extends AccountsEventType
  ? { type: K; data: AccountsEventOf<K>['data'] }
  : never;
