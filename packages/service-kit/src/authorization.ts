/**
 * What an `Authorization` header says. API keys go as `token <key>` (the form Sourcegraph's
 * clients send) or `Bearer <key>` (what generic HTTP clients send); both services take both.
 */
export type Authorization =
  | { kind: 'none' }
  | { kind: 'apiKey'; key: string }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'malformed'; reason: string }
  | { kind: 'unsupported'; scheme: string };

const apiKeySchemes = new Set(['token', 'bearer']);

/** Parses one `Authorization` header value. Pure; the credentials never appear in a `reason`. */
export function parseAuthorization(header: string | string[] | undefined): Authorization {
  if (Array.isArray(header)) {
    return header.length === 0
      ? { kind: 'none' }
      : { kind: 'malformed', reason: 'send exactly one Authorization header' };
  }
  const value = (header ?? '').trim();
  if (value === '') return { kind: 'none' };
  const match = /^(\S+)(?:\s+([\s\S]*))?$/.exec(value);
  const scheme = (match?.[1] ?? '').toLowerCase();
  const credentials = (match?.[2] ?? '').trim();
  if (apiKeySchemes.has(scheme)) {
    if (credentials === '') return { kind: 'malformed', reason: `the ${scheme} scheme needs an API key` };
    if (/\s/.test(credentials)) return { kind: 'malformed', reason: 'send exactly one API key' };
    return { kind: 'apiKey', key: credentials };
  }
  if (scheme === 'basic') {
    if (credentials === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(credentials)) {
      return { kind: 'malformed', reason: 'Basic credentials must be base64 of "<username>:<password>"' };
    }
    const decoded = Buffer.from(credentials, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      return { kind: 'malformed', reason: 'Basic credentials must be base64 of "<username>:<password>"' };
    }
    return { kind: 'basic', username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return { kind: 'unsupported', scheme: match?.[1] ?? '' };
}

/** The challenge a 401 sends for API keys (and, where a route takes one, a password). */
export function apiKeyChallenge(opts: { realm: string; basic?: boolean }): string {
  const realm = opts.realm.replaceAll('"', '');
  return [
    `token realm="${realm}"`,
    `Bearer realm="${realm}"`,
    ...(opts.basic ? [`Basic realm="${realm}"`] : []),
  ].join(', ');
}
