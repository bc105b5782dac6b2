import { createHash } from 'node:crypto';

/**
 * Paths of the links emails carry, relative to the site's `externalURL`. accounts serves them;
 * notifications builds them. Changing one breaks links already in mailboxes: add, never rename.
 */
export const linkPaths = {
  verifyEmail: '/-/verify-email',
  passwordReset: '/password-reset',
  invitation: '/-/invitation',
} as const;

export type LinkKind = keyof typeof linkPaths;

/** Builds an absolute link: externalURL (with or without a trailing slash) + path + query. */
export function buildLink(externalURL: string, kind: LinkKind, params: Record<string, string>): string {
  const url = new URL(linkPaths[kind], `${externalURL.replace(/\/+$/, '')}/`);
  url.pathname = `${new URL(externalURL).pathname.replace(/\/+$/, '')}${linkPaths[kind]}`;
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.toString();
}

/** API keys read `sitemail_<43 base64url chars>`; services store and compare only this hash. */
export const API_KEY_PREFIX = 'sitemail_';
export function apiKeySecretSha256(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}
