import Type, { type Static } from 'typebox';

export const Uuid = Type.String({ format: 'uuid', description: 'RFC 4122 UUID' });
export const EmailAddress = Type.String({ format: 'email', maxLength: 254, description: 'An email address' });
export const Timestamp = Type.String({ format: 'date-time', description: 'RFC 3339 time, UTC' });

/**
 * A link token (verification, set-password, reset, invitation) sealed with AES-256-GCM for the
 * notifications service, so that other consumers of the topic cannot use it. `kid` names the key
 * so keys can be rotated; the user id and event type are bound as additional authenticated data.
 */
export const SealedToken = Type.Object(
  {
    alg: Type.Literal('A256GCM'),
    kid: Type.String({ minLength: 1, maxLength: 64 }),
    iv: Type.String({ pattern: '^[A-Za-z0-9_-]{16}$', description: '96-bit nonce, base64url' }),
    ciphertext: Type.String({ pattern: '^[A-Za-z0-9_-]+$', description: 'base64url' }),
    tag: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: '128-bit GCM tag, base64url' }),
  },
  { description: 'A link token encrypted for the notifications service (AES-256-GCM)' },
);
export type SealedToken = Static<typeof SealedToken>;
