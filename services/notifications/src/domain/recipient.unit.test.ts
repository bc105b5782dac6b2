import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsEvent } from '@sitemail/contracts';
import { Stream } from '../../test/events.ts';
import { evolveRecipient, primaryAddress, type Recipient } from './recipient.ts';

const replay = (events: AccountsEvent[], from?: Recipient) =>
  events.reduce<Recipient | undefined>((s, e) => evolveRecipient(s, e), from);

describe('evolveRecipient', () => {
  it('creates the recipient from UserCreated with its primary address as given', () => {
    const s = new Stream();
    const r = replay([
      s.created({ email: 'a@example.com', verified: false, siteAdmin: true, username: 'ann' }),
    ]);
    assert.ok(r);
    assert.equal(r.username, 'ann');
    assert.equal(r.primaryEmail, 'a@example.com');
    assert.deepEqual(r.addresses, [{ email: 'a@example.com', verified: false }]);
    assert.equal(r.siteAdmin, true);
    assert.equal(r.authProvider, 'builtin');
    assert.equal(r.position, 1);
  });

  it('ignores events of a user it has not seen created', () => {
    const s = new Stream();
    s.created({ email: 'a@example.com', verified: true });
    assert.equal(replay([s.verified('a@example.com')]), undefined);
  });

  it('follows addresses: added, verified (case-insensitively), unverified, removed, primary changed', () => {
    const s = new Stream();
    const r = replay([
      s.created({ email: 'a@example.com', verified: false }),
      s.next('EmailAdded', { email: 'b@example.com' }),
      s.verified('A@Example.com'),
      s.next('PrimaryEmailChanged', { email: 'b@example.com', previousEmail: 'a@example.com' }),
      s.next('EmailVerified', { email: 'b@example.com', method: 'site-admin' }),
      s.next('EmailUnverified', { email: 'a@example.com', by: s.userId }),
      s.next('EmailRemoved', { email: 'a@example.com' }),
    ]);
    assert.ok(r);
    assert.equal(r.primaryEmail, 'b@example.com');
    assert.deepEqual(r.addresses, [{ email: 'b@example.com', verified: true }]);
    assert.deepEqual(primaryAddress(r), { email: 'b@example.com', verified: true });
    assert.equal(r.position, 7);
  });

  it('keeps API keys by secret hash and marks revoked ones; tracks site admin changes', () => {
    const s = new Stream();
    const created = s.created({ email: 'a@example.com', verified: true });
    const first = s.apiKeyCreated('CI', 'b'.repeat(64));
    const r = replay([
      created,
      first,
      s.apiKeyCreated('other', 'c'.repeat(64)),
      s.next('ApiKeyRevoked', { keyId: first.data.keyId, revokedBy: s.userId }),
      s.next('SiteAdminChanged', { siteAdmin: true, changedBy: s.userId }),
    ]);
    assert.ok(r);
    assert.deepEqual(
      r.apiKeys.map((k) => [k.secretSha256[0], k.revoked]),
      [
        ['b', true],
        ['c', false],
      ],
    );
    assert.equal(r.siteAdmin, true);
  });

  it('treats an event at or below the applied position as a replay and changes nothing', () => {
    const s = new Stream();
    const created = s.created({ email: 'a@example.com', verified: false });
    const verified = s.verified('a@example.com');
    const r = replay([created, verified]);
    const unverify = {
      ...verified,
      type: 'EmailUnverified',
      data: { email: 'a@example.com', by: s.userId },
    } as AccountsEvent;
    assert.equal(evolveRecipient(r, unverify), r);
    assert.equal(evolveRecipient(r, created), r);
  });

  it('rebuilds the same state from the whole stream replayed twice', () => {
    const s = new Stream();
    const events = [
      s.created({ email: 'a@example.com', verified: false }),
      s.verificationRequested('a@example.com'),
      s.verified('a@example.com'),
      s.apiKeyCreated(),
    ];
    const once = replay(events);
    assert.deepEqual(replay(events, once), once);
  });
});
