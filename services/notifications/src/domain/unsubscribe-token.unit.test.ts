import assert from 'node:assert/strict';
import { createHmac, hkdfSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { generateLinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';
import { type EmailKind, emailKinds } from './emails.ts';
import {
  issueUnsubscribeToken,
  isUnsubscribable,
  UNSUBSCRIBE_TOKEN_LENGTH,
  UNSUBSCRIBE_TOKEN_TTL_MS,
  unsubscribeURL,
  verifyUnsubscribeToken,
} from './unsubscribe-token.ts';

const key = parseLinkTokenKey(generateLinkTokenKey('k1'));
const older = parseLinkTokenKey(generateLinkTokenKey('k0'));
const other = parseLinkTokenKey(generateLinkTokenKey('k1'));
const userId = '0b6f2a1c-3d4e-4f5a-8b6c-7d8e9f0a1b2c';
const issuedAt = new Date('2026-12-01T10:00:00Z');
const claim = { userId, kind: 'code-monitor-triggered' as const, issuedAt };
const token = issueUnsubscribeToken(claim, key);
const later = (ms: number) => new Date(issuedAt.getTime() + ms);

/** Flips one bit of the decoded token and encodes it again. */
function flipped(t: string, byte: number): string {
  const raw = Buffer.from(t, 'base64url');
  raw[byte]! ^= 0x01;
  return raw.toString('base64url');
}

describe('isUnsubscribable', () => {
  const table: [EmailKind, boolean][] = [
    ['code-monitor-triggered', true],
    ['email-verification', false],
    ['set-password', false],
    ['password-reset', false],
    ['password-changed', false],
    ['primary-email-changed', false],
    ['api-key-created', false],
    ['site-admin-changed', false],
    ['invitation', false],
  ];
  for (const [kind, expected] of table) {
    it(`${kind}: ${expected ? 'a user may opt out' : 'never unsubscribable'}`, () => {
      assert.equal(isUnsubscribable(kind), expected);
    });
  }
  it('the table covers every email kind', () => {
    assert.deepEqual(table.map(([k]) => k).sort(), [...emailKinds].sort());
  });
});

describe('unsubscribe tokens', () => {
  it('are URL-safe, of a fixed length, and carry no address', () => {
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.equal(token.length, UNSUBSCRIBE_TOKEN_LENGTH);
    // The MAC's 32 random-looking bytes may hold 0x40 by chance: only the payload before it is
    // ours to check (version, kind, issue time and the user id's 16 bytes: nothing else fits).
    const raw = Buffer.from(token, 'base64url');
    const payload = raw.subarray(0, raw.length - 32);
    assert.equal(payload.length, 22);
    assert.equal(payload.includes(Buffer.from('@')), false);
    assert.ok(payload.includes(Buffer.from(userId.replaceAll('-', ''), 'hex')), 'the user id, as 16 bytes');
  });

  it('verify to the user, the kind and the issue time (to the second)', () => {
    assert.deepEqual(verifyUnsubscribeToken(token, key, later(1000)), { ok: true, claim });
  });

  it('verify under an older key still in use (rotation), the current one first', () => {
    const old = issueUnsubscribeToken(claim, older);
    assert.equal(verifyUnsubscribeToken(old, [key, older], later(0)).ok, true);
    assert.deepEqual(verifyUnsubscribeToken(old, [key], later(0)), { ok: false, problem: 'invalid' });
  });

  it('are refused under another key with the same key id', () => {
    assert.deepEqual(verifyUnsubscribeToken(token, other, later(0)), { ok: false, problem: 'invalid' });
  });

  it('are refused when any bit of the payload or the MAC is changed', () => {
    for (const byte of [0, 1, 2, 5, 6, 21, 22, 53]) {
      assert.deepEqual(
        verifyUnsubscribeToken(flipped(token, byte), key, later(0)),
        { ok: false, problem: 'invalid' },
        `byte ${byte}`,
      );
    }
  });

  it('are refused when malformed: cut, padded, another alphabet, empty', () => {
    for (const bad of [
      token.slice(0, -1),
      `${token}A`,
      `${token.slice(0, -1)}=`,
      token.replace(/./, '+'),
      '',
    ]) {
      assert.deepEqual(verifyUnsubscribeToken(bad, key, later(0)), { ok: false, problem: 'invalid' });
    }
  });

  it('expire after the lifetime (60 days), not before', () => {
    assert.equal(UNSUBSCRIBE_TOKEN_TTL_MS, 60 * 86_400_000);
    assert.equal(verifyUnsubscribeToken(token, key, later(UNSUBSCRIBE_TOKEN_TTL_MS)).ok, true);
    assert.deepEqual(verifyUnsubscribeToken(token, key, later(UNSUBSCRIBE_TOKEN_TTL_MS + 1000)), {
      ok: false,
      problem: 'expired',
    });
  });

  it('an expired token under another key is invalid, not expired (expiry is told only of genuine tokens)', () => {
    assert.deepEqual(verifyUnsubscribeToken(token, other, later(UNSUBSCRIBE_TOKEN_TTL_MS * 2)), {
      ok: false,
      problem: 'invalid',
    });
  });

  it('a genuine MAC over an unknown kind or version is refused', () => {
    // signed exactly as the service signs, so only the kind / version byte is wrong
    const macKey = Buffer.from(
      hkdfSync('sha256', key.key, Buffer.alloc(0), 'sitemail notifications unsubscribe-token v1', 32),
    );
    const forge = (version: number, kind: number) => {
      const payload = Buffer.from(Buffer.from(token, 'base64url').subarray(0, 22));
      payload[0] = version;
      payload[1] = kind;
      return Buffer.concat([payload, createHmac('sha256', macKey).update(payload).digest()]).toString(
        'base64url',
      );
    };
    assert.equal(verifyUnsubscribeToken(forge(1, 1), key, later(0)).ok, true, 'the forger signs right');
    assert.deepEqual(verifyUnsubscribeToken(forge(1, 2), key, later(0)), { ok: false, problem: 'invalid' });
    assert.deepEqual(verifyUnsubscribeToken(forge(2, 1), key, later(0)), { ok: false, problem: 'invalid' });
  });

  it('is not the link-token key used as is (its own HKDF label)', () => {
    const payload = Buffer.from(token, 'base64url').subarray(0, 22);
    const withRawKey = Buffer.concat([payload, createHmac('sha256', key.key).update(payload).digest()]);
    assert.deepEqual(verifyUnsubscribeToken(withRawKey.toString('base64url'), key, later(0)), {
      ok: false,
      problem: 'invalid',
    });
  });

  it('a token issued in the future is refused', () => {
    assert.deepEqual(verifyUnsubscribeToken(token, key, later(-10 * 60_000)), {
      ok: false,
      problem: 'invalid',
    });
  });

  it('cannot be issued for a security email or a user id that is not a uuid', () => {
    assert.throws(() => issueUnsubscribeToken({ ...claim, kind: 'api-key-created' }, key), /cannot be/);
    assert.throws(() => issueUnsubscribeToken({ ...claim, userId: 'alice' }, key), /uuid/);
  });

  it('the URL sits under externalURL, with its path kept', () => {
    assert.equal(
      unsubscribeURL('https://sourcegraph.example.com', token),
      `https://sourcegraph.example.com/-/unsubscribe/${token}`,
    );
    assert.equal(
      unsubscribeURL('https://example.com/sg/?x=1', token),
      `https://example.com/sg/-/unsubscribe/${token}`,
    );
  });
});
