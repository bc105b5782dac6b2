/**
 * `email.smtp.oauth2`: the shape of the XOAUTH2 settings, and what each grant needs beyond the
 * shape (the secret it sends or the key it signs with). Kept apart from parse.ts, which holds the
 * rest of the site config.
 */
import Type from 'typebox';
import type { SiteConfigIssue } from './parse.ts';

// `problem` is this package's annotation: the message an admin reads for any failure at that key.
const Text = (problem = 'must be a non-empty string') => Type.String({ minLength: 1, problem });

export const OAuth2Schema = Type.Object(
  {
    tokenURL: Text('must be an absolute https URL (http only toward a loopback host)'),
    clientID: Text(),
    clientSecret: Type.Optional(Text()),
    scope: Type.Optional(Text('must be a space-separated list of scopes')),
    grant: Type.Union(
      [Type.Literal('client_credentials'), Type.Literal('refresh_token'), Type.Literal('jwt_bearer')],
      { problem: 'must be one of "client_credentials", "refresh_token", "jwt_bearer"' },
    ),
    refreshToken: Type.Optional(Text()),
    privateKey: Type.Optional(
      Type.String({ pattern: '-----BEGIN PRIVATE KEY-----', problem: 'must be a PEM PKCS#8 private key' }),
    ),
    keyID: Type.Optional(Text()),
    certificateThumbprint: Type.Optional(
      Type.String({
        pattern: '^([0-9A-Fa-f:]{40,59}|[A-Za-z0-9_-]{27})$',
        problem: 'must be a SHA-1 thumbprint, hex (as the Entra portal shows it) or base64url',
      }),
    ),
  },
  { additionalProperties: false, problem: 'must be an object' },
);

/** What XOAUTH2 needs beyond the schema's shape: the mailbox, and the secret each grant signs or sends with. */
export function oauth2Issues(smtp: Record<string, unknown>): SiteConfigIssue[] {
  const issues: SiteConfigIssue[] = [];
  const when = 'is required when authentication is XOAUTH2';
  if (typeof smtp.username !== 'string' || smtp.username === '') {
    issues.push({ key: 'email.smtp.username', message: `${when} (the mailbox to send as)` });
  }
  const o = smtp.oauth2 as Record<string, unknown> | undefined;
  if (o === undefined) return [...issues, { key: 'email.smtp.oauth2', message: when }];
  if (typeof o !== 'object' || o === null) return issues;
  const key = (k: string) => `email.smtp.oauth2.${k}`;
  for (const k of ['tokenURL', 'clientID', 'grant']) {
    if (o[k] === undefined) issues.push({ key: key(k), message: 'is required' });
  }
  if (typeof o.tokenURL === 'string' && !tokenUrlAllowed(o.tokenURL)) {
    issues.push({
      key: key('tokenURL'),
      message: 'must be an absolute https URL (http only toward a loopback host)',
    });
  }
  if (o.grant === 'refresh_token' && o.refreshToken === undefined) {
    issues.push({ key: key('refreshToken'), message: 'is required when grant is refresh_token' });
  }
  if (o.grant === 'jwt_bearer' && o.privateKey === undefined) {
    issues.push({ key: key('privateKey'), message: 'is required when grant is jwt_bearer' });
  }
  if (o.grant === 'client_credentials' && o.clientSecret === undefined && o.privateKey === undefined) {
    issues.push({
      key: key('clientSecret'),
      message: 'is required when grant is client_credentials (or privateKey, to sign a client assertion)',
    });
  }
  return issues;
}

/** https, or http toward loopback (a local token endpoint; the secret never leaves the machine). */
function tokenUrlAllowed(s: string): boolean {
  try {
    const url = new URL(s);
    if (url.protocol === 'https:') return url.host !== '';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    return url.protocol === 'http:' && (host === 'localhost' || host.startsWith('127.') || host === '::1');
  } catch {
    return false;
  }
}
