import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { LinkTokenKey } from '@sitemail/contracts';
import type { EmailKind } from './emails.ts';

/**
 * Which emails a user may opt out of (RFC 8058 one-click unsubscribe). Only notifications the user
 * asked for by setting something up: code-monitoring. Everything about the account's security or
 * access (verification, set-password, reset, password/primary/site-admin changes, an API key
 * created) and invitations (one-off, sent on someone else's behalf) are never unsubscribable: a
 * user who could opt out of "an API key was created on your account" would not hear of a stolen
 * account. A new kind must be placed here (the switch has no default).
 */
export function isUnsubscribable(kind: EmailKind): boolean {
  switch (kind) {
    case 'code-monitor-triggered':
      return true;
    case 'email-verification':
    case 'set-password':
    case 'password-reset':
    case 'password-changed':
    case 'primary-email-changed':
    case 'api-key-created':
    case 'site-admin-changed':
    case 'invitation':
      return false;
    default: {
      const unhandled: never = kind;
      throw new Error(`isUnsubscribable: unhandled email kind ${String(unhandled)}`);
    }
  }
}

/**
 * The path of the one-click URL under `externalURL` (the site's front routes it to notifications,
 * as it routes `/-/verify-email` to accounts). In mailboxes once sent: add, never rename.
 */
export const UNSUBSCRIBE_PATH = '/-/unsubscribe';

/**
 * How long a token is honoured after the email carrying it was sent. RFC 8058 sets no lifetime;
 * 60 days covers a user who unsubscribes from an old email in their archive and a provider that
 * posts the one-click request late, while a token copied out of a leaked mailbox stops working
 * after two months (each new email carries a fresh one, so a user still receiving them always has
 * a live link). The lifetime is checked at verification, so changing it applies to tokens issued.
 */
export const UNSUBSCRIBE_TOKEN_TTL_MS = 60 * 24 * 60 * 60 * 1000;

/**
 * A stable byte per unsubscribable kind (never an index into `emailKinds`, whose order may change):
 * tokens already in mailboxes keep meaning the same kind. Add, never reuse.
 */
const kindCodes = { 'code-monitor-triggered': 1 } as const satisfies Partial<Record<EmailKind, number>>;
type UnsubscribableKind = keyof typeof kindCodes;
const kindOfCode = new Map<number, UnsubscribableKind>(
  Object.entries(kindCodes).map(([k, c]) => [c, k as UnsubscribableKind]),
);

const VERSION = 1;
// version(1) kind(1) issued-at seconds(4, unsigned: until 2106) user id(16) HMAC-SHA256(32)
const PAYLOAD_BYTES = 1 + 1 + 4 + 16;
const MAC_BYTES = 32;
const TOKEN_BYTES = PAYLOAD_BYTES + MAC_BYTES;
/** base64url of 54 bytes, no padding. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{72}$/;
export const UNSUBSCRIBE_TOKEN_LENGTH = 72;

/**
 * The MAC key: HKDF-SHA256 of the link-token key under a label of its own. The link-token key
 * seals AES-GCM link tokens; a key derived with another `info` is unrelated to it, so an
 * unsubscribe token cannot be made from, or mistaken for, anything sealed with the link-token key.
 */
const INFO = 'sitemail notifications unsubscribe-token v1';
const macKeys = new WeakMap<LinkTokenKey, Buffer>();
function macKeyOf(key: LinkTokenKey): Buffer {
  let k = macKeys.get(key);
  if (!k) {
    k = Buffer.from(hkdfSync('sha256', key.key, Buffer.alloc(0), INFO, 32));
    macKeys.set(key, k);
  }
  return k;
}

const mac = (key: LinkTokenKey, payload: Buffer) =>
  createHmac('sha256', macKeyOf(key)).update(payload).digest();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UnsubscribeClaim {
  userId: string;
  kind: EmailKind;
  issuedAt: Date;
}

/**
 * A URL-safe token saying "this user may stop emails of this kind", signed with the current
 * link-token key. It holds the user id, the kind and when it was issued; no address (the URL is
 * seen by every mail server and scanner on the way). Pure: the time is passed in.
 */
export function issueUnsubscribeToken(claim: UnsubscribeClaim, key: LinkTokenKey): string {
  if (!isUnsubscribable(claim.kind) || !(claim.kind in kindCodes)) {
    throw new Error(`issueUnsubscribeToken: ${claim.kind} emails cannot be unsubscribed from`);
  }
  if (!UUID.test(claim.userId)) throw new Error('issueUnsubscribeToken: the user id is not a uuid');
  const payload = Buffer.alloc(PAYLOAD_BYTES);
  payload.writeUInt8(VERSION, 0);
  payload.writeUInt8(kindCodes[claim.kind as UnsubscribableKind], 1);
  payload.writeUInt32BE(Math.floor(claim.issuedAt.getTime() / 1000), 2);
  Buffer.from(claim.userId.replace(/-/g, ''), 'hex').copy(payload, 6);
  return Buffer.concat([payload, mac(key, payload)]).toString('base64url');
}

export type UnsubscribeTokenCheck =
  | { ok: true; claim: UnsubscribeClaim }
  /**
   * `invalid`: not a token of ours under any key (malformed, tampered, another key, an unknown
   * kind); the caller says no more than that. `expired`: genuine, but older than the lifetime.
   */
  | { ok: false; problem: 'invalid' | 'expired' };

/**
 * Checks a token against the link-token keys in use (the current one and, during a rotation,
 * older ones): the MAC is compared in constant time before anything in the payload is believed.
 */
export function verifyUnsubscribeToken(
  token: string,
  keys: LinkTokenKey | readonly LinkTokenKey[],
  now: Date,
  ttlMs: number = UNSUBSCRIBE_TOKEN_TTL_MS,
): UnsubscribeTokenCheck {
  if (!TOKEN_PATTERN.test(token)) return { ok: false, problem: 'invalid' };
  const raw = Buffer.from(token, 'base64url');
  if (raw.length !== TOKEN_BYTES) return { ok: false, problem: 'invalid' };
  const payload = raw.subarray(0, PAYLOAD_BYTES);
  const given = raw.subarray(PAYLOAD_BYTES);
  // every key is tried (no early exit on a match), so the time does not say which key signed it
  let genuine = false;
  for (const key of Array.isArray(keys) ? keys : [keys as LinkTokenKey]) {
    if (timingSafeEqual(mac(key, payload), given)) genuine = true;
  }
  if (!genuine || payload.readUInt8(0) !== VERSION) return { ok: false, problem: 'invalid' };
  const kind = kindOfCode.get(payload.readUInt8(1));
  if (!kind) return { ok: false, problem: 'invalid' };
  const issuedAt = new Date(payload.readUInt32BE(2) * 1000);
  // a token from the future (clock skew between instances of a minute or so is fine) is not ours
  if (issuedAt.getTime() > now.getTime() + 5 * 60_000) return { ok: false, problem: 'invalid' };
  if (now.getTime() - issuedAt.getTime() > ttlMs) return { ok: false, problem: 'expired' };
  const hex = payload.subarray(6, 22).toString('hex');
  const userId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { ok: true, claim: { userId, kind, issuedAt } };
}

/** The one-click URL: `externalURL` (with its path, if any) + UNSUBSCRIBE_PATH + `/<token>`. */
export function unsubscribeURL(externalURL: string, token: string): string {
  const base = new URL(externalURL);
  base.pathname = `${base.pathname.replace(/\/+$/, '')}${UNSUBSCRIBE_PATH}/${token}`;
  base.search = '';
  base.hash = '';
  return base.toString();
}
