import { randomBytes } from 'node:crypto';
import { REDACTED, type SiteConfig, type SmtpConfig } from '@sitemail/site-config';

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

/** Thrown when a REDACTED field has no saved value to stand for. */
export class NothingSaved extends Error {
  constructor(readonly field: string) {
    super(`invalid "${field}": reads "${REDACTED}" but no value is saved for it`);
  }
}

function unredact<T>(value: T, saved: T | undefined, field: string): T {
  if (value !== REDACTED) return value;
  if (saved === undefined) throw new NothingSaved(field);
  return saved;
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
