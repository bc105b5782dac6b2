/**
 * The one address grammar of the product: what accounts accepts for a user's address or an
 * invitation, what `/test-email` accepts as `to`, and what the site config accepts as
 * `email.address`. It is the subset every SMTP relay delivers without extensions:
 *
 * - the local part is an RFC 5321 Dot-string in ASCII: no quoted local parts (`"a b"@…`, which
 *   relays answer 501), and no UTF-8 (that needs SMTPUTF8, RFC 6531, which sitemail does not
 *   send: refused with a message saying so);
 * - the domain is a fully qualified DNS name (at least one dot, a non-numeric TLD): no address
 *   literals (`a@[127.0.0.1]`) and no single labels (`a@b`, `a@localhost`). Internationalised
 *   domains are accepted and kept in their ASCII form (IDNA A-labels, `xn--…`), the form mail
 *   servers route by, lower-cased, so one address has one spelling in events and lookups;
 * - no control character anywhere (a NUL or CR/LF is refused, never stripped), at most 64
 *   characters before the `@` and 254 in all (RFC 5321 §4.5.3.1).
 *
 * The syntax check itself is validator.js's `isEmail` (RFC 5321/5322 grammar) with the options
 * above; IDNA is Node's WHATWG `domainToASCII`. Stored events keep the v1 schema's `format: email`
 * (older events may hold addresses this grammar now refuses; consumers must still read them).
 */
import { domainToASCII } from 'node:url';
import Type from 'typebox';
import { Format } from 'typebox/format';
import validator from 'validator';

export type ParsedEmailAddress = { ok: true; address: string } | { ok: false; problem: string };

const isEmailOptions = {
  allow_display_name: false,
  allow_utf8_local_part: false,
  require_tld: true,
  allow_ip_domain: false,
  blacklisted_chars: '"',
};

const hasControlCharacter = (s: string) => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};

/** Parses what a person typed into the product's canonical address, or names what is wrong. */
export function parseEmailAddress(input: string): ParsedEmailAddress {
  const refuse = (problem: string): ParsedEmailAddress => ({ ok: false, problem });
  if (typeof input !== 'string' || input.length === 0) return refuse('is empty');
  if (hasControlCharacter(input)) return refuse('contains a control character');
  if (input.includes('"')) return refuse('quoted local parts ("…"@) are not accepted');
  if (/\s/u.test(input)) return refuse('contains whitespace');
  const at = input.lastIndexOf('@');
  if (at < 0) return refuse('has no @');
  const local = input.slice(0, at);
  const domain = input.slice(at + 1);
  if (local.length === 0) return refuse('has nothing before the @');
  if (local.includes('@')) return refuse('has more than one @');
  if (domain.startsWith('['))
    return refuse('address literals like [127.0.0.1] are not accepted: use a domain name');
  // Control characters are refused above, so anything outside printable ASCII is UTF-8.
  if (/[^ -~]/.test(local)) {
    return refuse('non-ASCII characters before the @ need SMTPUTF8, which sitemail does not send');
  }
  if (local.length > 64) return refuse('has more than 64 characters before the @');
  const ascii = domainToASCII(domain).toLowerCase();
  if (ascii === '') return refuse(`has a domain that is not a valid host name ("${domain}")`);
  if (!ascii.includes('.')) return refuse('needs a fully qualified domain (like example.com) after the @');
  const address = `${local}@${ascii}`;
  if (address.length > 254) return refuse('is longer than 254 characters');
  if (!validator.isEmail(address, isEmailOptions)) return refuse('is not a valid email address');
  return { ok: true, address };
}

/** The canonical form, or throws naming the problem (for values that were validated already). */
export function canonicalEmailAddress(input: string): string {
  const parsed = parseEmailAddress(input);
  if (!parsed.ok) throw new Error(`email address ${parsed.problem}`);
  return parsed.address;
}

/**
 * The grammar as a TypeBox/JSON Schema format for HTTP inputs, registered when contracts is
 * imported. Named apart from `email` on purpose: stored events are read with the lenient v1 format.
 */
export const EMAIL_ADDRESS_FORMAT = 'sitemail-email-address';
Format.Set(EMAIL_ADDRESS_FORMAT, (value) => parseEmailAddress(value).ok);

/** An address a person types: validated by the product grammar, canonicalised by `parseEmailAddress`. */
export const EmailAddressInput = Type.String({
  format: EMAIL_ADDRESS_FORMAT,
  minLength: 3,
  maxLength: 254,
  description:
    'An email address: ASCII before the @ (no quoted parts), a fully qualified domain after it ' +
    '(internationalised domains are stored in their xn-- form); no address literals or control characters.',
  examples: ['alice@example.com'],
});
