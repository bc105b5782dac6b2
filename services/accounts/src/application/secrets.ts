import { randomBytes } from 'node:crypto';
import { API_KEY_PREFIX, apiKeySecretSha256 } from '@sitemail/contracts';

/** A link token: 256 random bits, base64url. Only its SHA-256 is stored; it travels sealed. */
export const newLinkToken = () => randomBytes(32).toString('base64url');

/** An API key secret: `sitemail_` + 43 base64url characters of 32 random bytes. */
export function newApiKeySecret(): { secret: string; sha256: string } {
  const secret = `${API_KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { secret, sha256: apiKeySecretSha256(secret) };
}

export const API_KEY_PATTERN = /^sitemail_[A-Za-z0-9_-]{43}$/;
