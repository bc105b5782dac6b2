import { randomBytes } from 'node:crypto';
import { parseEmailAddress } from '@sitemail/contracts';
import { REDACTED, type SiteConfig, type SmtpConfig, type SmtpOAuth2Config } from '@sitemail/site-config';
import { credentialsNeedTls, implicitTls } from '../smtp/connection-rules.ts';

/**
 * Settings an admin typed but has not saved, to try before saving (the body of `POST /test-email`).
 * Never persisted. The merge lives here rather than beside `redactSiteConfig` in
 * `@sitemail/site-config` so that package keeps to reading and showing the saved config.
 */
export interface UnsavedSettings {
  smtp?: Omit<SmtpConfig, 'authentication' | 'noVerifyTLS'> & {
    authentication?: SmtpConfig['authentication'];
    noVerifyTLS?: boolean;
  };
  'email.address'?: string;
  'email.senderName'?: string;
}

/** A REDACTED field that cannot take the saved value; the route answers 400 naming `field`. */
export class RedactedRefused extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'RedactedRefused';
  }
}

/** Thrown when a REDACTED field has no saved value to stand for. */
export class NothingSaved extends RedactedRefused {
  constructor(field: string) {
    super(field, `invalid "${field}": reads "${REDACTED}" but no value is saved for it`);
  }
}

/**
 * Thrown when a REDACTED credential would go to another server than the saved one: the saved
 * username and password are the admin's to use, not to hand to whatever host a request names.
 */
export class CredentialsForAnotherServer extends RedactedRefused {
  constructor(field: string) {
    super(
      field,
      `invalid "${field}": "${REDACTED}" stands for the saved value only toward the saved server (same host, port and TLS, certificate verification on); re-enter the ${field.replace(/^smtp\./, '')} to test another server`,
    );
  }
}

/**
 * Thrown when a REDACTED OAuth2 secret would go to another token endpoint (or its token to another
 * SMTP server): the saved client secret, refresh token or key are only for the saved pair.
 */
export class SecretForAnotherTokenEndpoint extends RedactedRefused {
  constructor(field: string) {
    super(
      field,
      `invalid "${field}": "${REDACTED}" stands for the saved value only toward the saved server and the saved token endpoint (email.smtp.oauth2.tokenURL); re-enter the ${field.replace(/^smtp\.oauth2\./, '')} to test another one`,
    );
  }
}

const OAUTH2_SECRETS = ['clientSecret', 'refreshToken', 'privateKey'] as const;

const sameTokenEndpoint = (a: string, b: string) => {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
};

/** The unsaved oauth2 object; REDACTED takes the saved value (secrets only toward the saved pair). */
function effectiveOAuth2(
  b: SmtpOAuth2Config,
  was: SmtpConfig | undefined,
  smtp: SmtpConfig,
): SmtpOAuth2Config {
  const saved = was?.oauth2;
  const out = { ...b };
  for (const [k, v] of Object.entries(b) as [keyof SmtpOAuth2Config, string | undefined][]) {
    if (v !== undefined) (out as Record<string, string>)[k] = unredact(v, saved?.[k], `smtp.oauth2.${k}`);
  }
  for (const k of OAUTH2_SECRETS) {
    if (b[k] !== REDACTED) continue;
    if (!was || !saved || !sameDestination(was, smtp) || !sameTokenEndpoint(saved.tokenURL, out.tokenURL)) {
      throw new SecretForAnotherTokenEndpoint(`smtp.oauth2.${k}`);
    }
  }
  return out;
}

function unredact<T>(value: T, saved: T | undefined, field: string): T {
  if (value !== REDACTED) return value;
  if (saved === undefined) throw new NothingSaved(field);
  return saved;
}

const hostKey = (host: string) =>
  host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');

/** How the mailer would protect the connection: implicit TLS, or STARTTLS demanded before AUTH. */
function tlsMode(smtp: SmtpConfig): string {
  // as the mailer decides it with credentials at stake (connection-rules.ts)
  const withCredentials = { ...smtp, authentication: 'PLAIN' as const };
  return `${implicitTls(smtp.port)}:${credentialsNeedTls(withCredentials)}`;
}

/**
 * Whether a saved credential may be used toward `requested`: the saved server exactly (host
 * compared case-insensitively, port, TLS mode) and with certificate verification on for both, so
 * that nobody on the path can stand in for the server and read what it is sent.
 */
export function sameDestination(saved: SmtpConfig, requested: SmtpConfig): boolean {
  return (
    hostKey(saved.host) === hostKey(requested.host) &&
    saved.port === requested.port &&
    tlsMode(saved) === tlsMode(requested) &&
    saved.noVerifyTLS !== true &&
    requested.noVerifyTLS !== true
  );
}

/** The config to test: the saved one with the body's unsaved settings over it; REDACTED takes the saved value. */
export function effectiveConfig(saved: SiteConfig, body: UnsavedSettings): SiteConfig {
  const config: SiteConfig = { ...saved };
  if (body.smtp) {
    const was = saved['email.smtp'];
    const b = body.smtp;
    const smtp: SmtpConfig = {
      authentication: b.authentication ?? 'PLAIN',
      host: unredact(b.host, was?.host, 'smtp.host'),
      port: b.port,
      noVerifyTLS: b.noVerifyTLS ?? false,
    };
    if (b.username !== undefined) smtp.username = unredact(b.username, was?.username, 'smtp.username');
    if (b.password !== undefined) smtp.password = unredact(b.password, was?.password, 'smtp.password');
    if (b.domain !== undefined) smtp.domain = unredact(b.domain, was?.domain, 'smtp.domain');
    if (b.oauth2 !== undefined) smtp.oauth2 = effectiveOAuth2(b.oauth2, was, smtp);
    for (const field of ['password', 'username'] as const) {
      if (b[field] === REDACTED && was && !sameDestination(was, smtp)) {
        throw new CredentialsForAnotherServer(`smtp.${field}`);
      }
    }
    config['email.smtp'] = smtp;
  }
  if (body['email.address'] !== undefined) {
    config['email.address'] = unredact(body['email.address'], saved['email.address'], 'email.address');
  }
  if (body['email.senderName'] !== undefined) {
    config['email.senderName'] = unredact(
      body['email.senderName'],
      saved['email.senderName'],
      'email.senderName',
    );
  }
  return config;
}

export type TestAddresses =
  | { ok: true; to: string; from?: string }
  | { ok: false; field: string; message: string };

const hasLineBreak = (s: string) => /[\r\n]/.test(s);

/**
 * The header-bound fields of a test email by the product's one address grammar (contracts'
 * `parseEmailAddress`): `to` and an unsaved `email.address` in canonical form (IDN as A-labels),
 * or the field and its problem. Nothing is stripped: a NUL or a line break is refused, so the
 * address tested is the address typed. Only surrounding spaces are forgiven.
 */
export function readTestAddresses(body: {
  to: string;
  'email.address'?: string | undefined;
  'email.senderName'?: string | undefined;
}): TestAddresses {
  const address = (field: string, value: string) => {
    if (hasLineBreak(value)) {
      return { field, message: `invalid "${field}": must not contain line breaks (header injection)` };
    }
    const parsed = parseEmailAddress(value.replace(/^ +| +$/g, ''));
    if (parsed.ok) return parsed.address;
    return {
      field,
      message: `invalid "${field}": must be exactly one email address, such as a@b.example (${parsed.problem})`,
    };
  };
  const to = address('to', body.to);
  if (typeof to !== 'string') return { ok: false, ...to };
  const name = body['email.senderName'];
  if (name !== undefined && hasLineBreak(name)) {
    return {
      ok: false,
      field: 'email.senderName',
      message: 'invalid "email.senderName": must not contain line breaks (header injection)',
    };
  }
  const raw = body['email.address'];
  if (raw === undefined || raw === REDACTED) return { ok: true, to };
  const from = address('email.address', raw);
  if (typeof from !== 'string') return { ok: false, ...from };
  return { ok: true, to, from };
}

/**
 * The log entry of one test send: which admin, toward which server, and how it ended, so a
 * misuse of the route can be traced to a key; never a credential or what the server said.
 */
export function testSendLog(
  adminUserId: string,
  config: SiteConfig,
  outcome: 'sent' | 'failed' | 'refused',
  more: { testId?: string; unsaved?: boolean; step?: string; responseCode?: number; field?: string } = {},
) {
  const smtp = config['email.smtp'];
  return { adminUserId, host: smtp?.host, port: smtp?.port, outcome, ...more };
}

/** A short ID an admin can read and match: 8 characters of Crockford base32 (no I, L, O, U). */
export function newTestId(bytes: Buffer = randomBytes(5)): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.slice(0, 8);
}
