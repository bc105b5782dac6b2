import { DEFAULT_SENDER_NAME } from './parse.ts';
import type { SiteConfig } from './types.ts';

export const REDACTED = 'REDACTED';

/** SMTP is "configured" when `email.smtp` is present; email verification is then required. */
export function smtpConfigured(config: SiteConfig): boolean {
  return config['email.smtp'] !== undefined;
}

/** Whether builtin (password) auth is on; without it no password links are sent (single sign-on sites). */
export function builtinAuthEnabled(config: SiteConfig): boolean {
  return config['auth.providers'].some((p) => p.type === 'builtin');
}

/** The display name in From: `email.senderName`, or the product name when absent. */
export function senderName(config: SiteConfig): string {
  return config['email.senderName'] ?? DEFAULT_SENDER_NAME;
}

const secretKey = /password|passwd|secret|token|apikey|api_key|privatekey|private_key|credential/i;
// an address is not a secret, even when its key names one (`email.smtp.oauth2.tokenURL`)
const addressKey = /(url|uri)$/i;

/**
 * A copy to show or log: every value under a key named like a secret (the SMTP password, a
 * provider's client secret, a token) reads `REDACTED`. Unset secrets stay unset, so an admin can
 * still see whether one is configured.
 */
export function redactSiteConfig<T>(config: T): T {
  return redact(config) as T;
}

function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      secretKey.test(k) && !addressKey.test(k) && v !== undefined && v !== null && v !== ''
        ? REDACTED
        : redact(v);
  }
  return out;
}
