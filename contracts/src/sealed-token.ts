import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SealedToken } from './common.ts';

/** A 32-byte AES key with an id. Both services get it from `LINK_TOKEN_KEY` (`<kid>:<base64 32 bytes>`). */
export interface LinkTokenKey {
  kid: string;
  key: Buffer;
}

export class LinkTokenKeyError extends Error {}

/** Parses `LINK_TOKEN_KEY`: `<kid>:<base64 of 32 bytes>`. The message never contains the key. */
export function parseLinkTokenKey(value: string): LinkTokenKey {
  const sep = value.indexOf(':');
  if (sep <= 0)
    throw new LinkTokenKeyError('LINK_TOKEN_KEY must read "<key id>:<base64 of 32 random bytes>"');
  const kid = value.slice(0, sep);
  const key = Buffer.from(value.slice(sep + 1), 'base64');
  if (key.length !== 32)
    throw new LinkTokenKeyError(`LINK_TOKEN_KEY must hold 32 bytes of key, not ${key.length}`);
  return { kid, key };
}

export function generateLinkTokenKey(kid = `k${Date.now().toString(36)}`): string {
  return `${kid}:${randomBytes(32).toString('base64')}`;
}

const aad = (userId: string, eventType: string) => Buffer.from(`${userId}\n${eventType}`, 'utf8');

/** Seals `token` for the notifications service, bound to the user and event type it travels with. */
export function sealToken(token: string, key: LinkTokenKey, userId: string, eventType: string): SealedToken {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(aad(userId, eventType));
  const ciphertext = Buffer.concat([cipher.update(token, 'utf8'), cipher.final()]);
  return {
    alg: 'A256GCM',
    kid: key.kid,
    iv: iv.toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
}

/** Opens a sealed token; throws when the key is unknown or the token was tampered with or moved. */
export function openToken(
  sealed: SealedToken,
  keys: LinkTokenKey | LinkTokenKey[],
  userId: string,
  eventType: string,
): string {
  const key = (Array.isArray(keys) ? keys : [keys]).find((k) => k.kid === sealed.kid);
  if (!key) throw new LinkTokenKeyError(`no link token key with id "${sealed.kid}"`);
  const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.iv, 'base64url'));
  decipher.setAAD(aad(userId, eventType));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
  return Buffer.concat([
    decipher.update(Buffer.from(sealed.ciphertext, 'base64url')),
    decipher.final(),
  ]).toString('utf8');
}
