import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import type { SmtpConfig } from '@sitemail/site-config';

/**
 * How the mailer talks to the configured server, decided without I/O from the site config.
 * These are the rules of Sourcegraph's admin documentation (SMTP and email delivery), as
 * docs/architecture.md states them; the mailer only carries them out.
 */

/** Port 465 is implicit TLS (SMTPS, RFC 8314); every other port starts in clear text and upgrades with STARTTLS when offered. */
export function implicitTls(port: number): boolean {
  return port === 465;
}

/**
 * Loopback by name or address: `localhost`, 127.0.0.0/8, ::1 (also IPv4-mapped). Decided on the
 * configured host string, not on what it resolves to: a name that happens to resolve to 127.0.0.1
 * on one machine may not on the next, so only names that are loopback by definition count.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === 'localhost.' || h.endsWith('.localhost')) return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) {
    if (h === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(h)) return true;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
    return mapped !== null && mapped[1]!.startsWith('127.');
  }
  return false;
}

/**
 * Whether the credentials may only go over TLS: always, unless the server is on this machine
 * (loopback), where a local relay without TLS is a common and safe setup. When true the mailer
 * demands STARTTLS before AUTH and fails rather than authenticate in clear text.
 */
export function credentialsNeedTls(smtp: Pick<SmtpConfig, 'authentication' | 'host' | 'port'>): boolean {
  return smtp.authentication !== 'none' && !implicitTls(smtp.port) && !isLoopbackHost(smtp.host);
}

/**
 * The name sent in EHLO. `domain` when set. Otherwise the machine's host name if it is fully
 * qualified. A bare name like `vm` or `localhost` is what relays reject (Postfix's
 * reject_non_fqdn_helo_hostname; docs/architecture.md rules out a bare `localhost`), and Node has no
 * portable way to ask the resolver for the canonical FQDN (no AI_CANONNAME in dns.lookup;
 * reverse DNS can hang), so the fallback is an RFC 5321 address literal of this machine's first
 * non-internal address, e.g. `[192.0.2.2]`, which is what a relay sees the connection come from.
 * `[127.0.0.1]` only when the machine has no other address.
 */
export function ehloName(
  domain: string | undefined,
  hostname: string,
  interfaces: Record<string, NetworkInterfaceInfo[] | undefined>,
): string {
  const configured = domain?.trim();
  if (configured) return configured;
  const host = hostname.trim().toLowerCase();
  if (host.includes('.') && !/^localhost(\.|$)/.test(host) && !host.endsWith('.localhost') && !isIPv4(host)) {
    return host;
  }
  const addresses = Object.values(interfaces).flatMap((list) => list ?? []);
  const v4 = addresses.find((a) => a.family === 'IPv4' && !a.internal);
  if (v4) return `[${v4.address}]`;
  const v6 = addresses.find(
    (a) => a.family === 'IPv6' && !a.internal && !a.address.toLowerCase().startsWith('fe80'),
  );
  if (v6) return `[IPv6:${v6.address}]`;
  return '[127.0.0.1]';
}

/**
 * A hash of the keys that shape the connection; when it changes the mailer builds a new pool.
 * The password and the oauth2 settings are part of it (a changed secret must take effect) but only as a hash.
 */
export function smtpConfigKey(smtp: SmtpConfig): string {
  const relevant = [
    smtp.host,
    smtp.port,
    smtp.authentication,
    smtp.username ?? '',
    smtp.password ?? '',
    smtp.oauth2 ?? null,
    smtp.domain ?? '',
    smtp.noVerifyTLS === true,
  ];
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex');
}

export interface SmtpTimeouts {
  /** TCP (and, for port 465, TLS) connection, DNS included. */
  connectionMs: number;
  /** From connected to the server's 220 greeting. */
  greetingMs: number;
  /** Any later silence: a reply to a command, the answer after DATA. */
  socketMs: number;
}

/**
 * Long enough for a slow relay on a slow link, short enough that a hanging server fails a
 * delivery (or an admin's test email) rather than holding it for nodemailer's default 10 minutes.
 */
export const DEFAULT_SMTP_TIMEOUTS: SmtpTimeouts = {
  connectionMs: 15_000,
  greetingMs: 15_000,
  socketMs: 60_000,
};

/** The connection part of nodemailer's options; auth handlers and logging are added by the mailer. */
export interface ConnectionPlan {
  host: string;
  port: number;
  secure: boolean;
  requireTLS: boolean;
  name: string;
  tls: { rejectUnauthorized: boolean };
  connectionTimeout: number;
  greetingTimeout: number;
  socketTimeout: number;
  dnsTimeout: number;
  /** The mechanism to demand, or undefined for `authentication: "none"`. */
  authMethod: AuthMethod | undefined;
}

export function connectionPlan(
  smtp: SmtpConfig,
  machine: { hostname: string; interfaces: Record<string, NetworkInterfaceInfo[] | undefined> },
  timeouts: SmtpTimeouts = DEFAULT_SMTP_TIMEOUTS,
): ConnectionPlan {
  return {
    host: smtp.host,
    port: smtp.port,
    secure: implicitTls(smtp.port),
    requireTLS: credentialsNeedTls(smtp),
    name: ehloName(smtp.domain, machine.hostname, machine.interfaces),
    tls: { rejectUnauthorized: smtp.noVerifyTLS !== true },
    connectionTimeout: timeouts.connectionMs,
    greetingTimeout: timeouts.greetingMs,
    socketTimeout: timeouts.socketMs,
    dnsTimeout: timeouts.connectionMs,
    authMethod: authMechanism(smtp.authentication),
  };
}

export type AuthMethod = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2';

function authMechanism(authentication: SmtpConfig['authentication']): AuthMethod | undefined {
  switch (authentication) {
    case 'PLAIN':
    case 'LOGIN':
    case 'CRAM-MD5':
    case 'XOAUTH2':
      return authentication;
    case 'none':
      return undefined;
    default: {
      const unknown: never = authentication;
      throw new Error(`unknown email.smtp.authentication ${JSON.stringify(unknown)}`);
    }
  }
}
