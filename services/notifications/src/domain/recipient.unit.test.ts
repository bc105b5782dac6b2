import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsEvent } from '@sitemail/contracts';
import { ProjectionSpecification } from '@sitemail/testkit';
import { Stream } from '../../test/events.ts';
import { primaryAddress, type Recipient, recipientProjection } from './recipient.ts';

const spec = ProjectionSpecification.for(recipientProjection);

describe('recipient projection', () => {
  it('creates the recipient from UserCreated with its primary address as given', () => {
    const s = new Stream();
    spec
      .given([s.created({ email: 'a@example.com', verified: false, siteAdmin: true, username: 'ann' })])
      .thenState({
        userId: s.userId,
        username: 'ann',
        addresses: [{ email: 'a@example.com', verified: false }],
        primaryEmail: 'a@example.com',
        siteAdmin: true,
        authProvider: 'builtin',
        apiKeys: [],
        position: 1,
      });
  });

  it('ignores events of a user it has not seen created', () => {
    const s = new Stream();
    s.created({ email: 'a@example.com', verified: true });
    spec.given([s.verified('a@example.com')]).thenState(undefined);
  });

  it('follows addresses: added, verified (case-insensitively), unverified, removed, primary changed', () => {
    const s = new Stream();
    spec
      .given([
        s.created({ email: 'a@example.com', verified: false }),
        s.next('EmailAdded', { email: 'b@example.com' }),
        s.verified('A@Example.com'),
        s.next('PrimaryEmailChanged', { email: 'b@example.com', previousEmail: 'a@example.com' }),
        s.next('EmailVerified', { email: 'b@example.com', method: 'site-admin' }),
        s.next('EmailUnverified', { email: 'a@example.com', by: s.userId }),
        s.next('EmailRemoved', { email: 'a@example.com' }),
      ])
      .thenStateMatches((r) => {
        assert.ok(r);
        assert.equal(r.primaryEmail, 'b@example.com');
        assert.deepEqual(r.addresses, [{ email: 'b@example.com', verified: true }]);
        assert.deepEqual(primaryAddress(r), { email: 'b@example.com', verified: true });
        assert.equal(r.position, 7);
      });
  });

  it('keeps API keys by secret hash and marks revoked ones; tracks site admin changes', () => {
    const s = new Stream();
    const created = s.created({ email: 'a@example.com', verified: true });
    const first = s.apiKeyCreated('CI', 'b'.repeat(64));
    spec
      .given([
        created,
        first,
        s.apiKeyCreated('other', 'c'.repeat(64)),
        s.next('ApiKeyRevoked', { keyId: first.data.keyId, revokedBy: s.userId }),
        s.next('SiteAdminChanged', { siteAdmin: true, changedBy: s.userId }),
      ])
      .thenStateMatches((r) => {
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
  });

  it('treats an event at or below the applied position as a replay and changes nothing', () => {
    const s = new Stream();
    const created = s.created({ email: 'a@example.com', verified: false });
    const verified = s.verified('a@example.com');
    let r: Recipient | undefined;
    spec.given([created, verified]).thenStateMatches((state) => {
      r = state;
    });
    const unverify = {
      ...verified,
      type: 'EmailUnverified',
      data: { email: 'a@example.com', by: s.userId },
    } as AccountsEvent;
    // The very same object: a replay does not even copy the state.
    spec.given([unverify], r).thenStateMatches((state) => assert.equal(state, r));
    spec.given([created], r).thenStateMatches((state) => assert.equal(state, r));
  });

  it('rebuilds the same state from the whole stream replayed twice', () => {
    const s = new Stream();
    const events = [
      s.created({ email: 'a@example.com', verified: false }),
      s.verificationRequested('a@example.com'),
      s.verified('a@example.com'),
      s.apiKeyCreated(),
    ];
    let once: Recipient | undefined;
    spec.given(events).thenStateMatches((state) => {
      once = state;
    });
    spec.given(events, once).thenState(once);
  });
});
