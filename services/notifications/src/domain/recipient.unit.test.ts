import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AccountsEvent } from '@sitemail/contracts';
import { ProjectionSpecification } from '@sitemail/testkit';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { siteFor } from '../../test/harness.ts';
import { decideNotifications } from './policy.ts';
import { evolveRecipient, primaryAddress, type Recipient, recipientProjection } from './recipient.ts';

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

  describe('a deleted user (UserDeleted)', () => {
    const tombstone = (userId: string, position: number): Recipient => ({
      userId,
      username: '',
      addresses: [],
      primaryEmail: '',
      siteAdmin: false,
      authProvider: '',
      apiKeys: [],
      position,
      deleted: true,
    });

    it('folds into a tombstone with no username, address or key', () => {
      const s = new Stream();
      spec
        .given([
          s.created({ email: 'a@example.com', verified: true, username: 'ann' }),
          s.next('EmailAdded', { email: 'b@example.com' }),
          s.apiKeyCreated(),
          s.next('UserDeleted', { deletedBy: 'self' }),
        ])
        .thenState(tombstone(s.userId, 4));
    });

    it('stays deleted: a replay of the stream from its start brings nothing back', () => {
      const s = new Stream();
      const created = s.created({ email: 'a@example.com', verified: true });
      const added = s.next('EmailAdded', { email: 'b@example.com' });
      const deleted = s.next('UserDeleted', { deletedBy: 'site-admin' });
      let r: Recipient | undefined;
      spec.given([created, added, deleted]).thenStateMatches((state) => {
        r = state;
      });
      spec.given([created, added], r).thenStateMatches((state) => assert.equal(state, r));
      // A (producer-bug) event after the deletion does not revive it either.
      spec.given([s.next('EmailAdded', { email: 'c@example.com' })], r).thenState(tombstone(s.userId, 3));
    });

    it('a deletion alone (the rest gone from the topic by retention) is a tombstone, not unknown', () => {
      const s = new Stream();
      s.created({ email: 'a@example.com', verified: true });
      const deleted = s.next('UserDeleted', { deletedBy: 'self' });
      spec.given([deleted]).thenState(tombstone(s.userId, 2));
      spec
        .given([deleted, s.created({ email: 'a@example.com', verified: true })])
        .thenState(tombstone(s.userId, 2));
    });

    it('the policy suppresses every email to a deleted user `user-deleted`, naming no address', () => {
      const s = new Stream();
      const r = evolveRecipient(
        evolveRecipient(undefined, s.created({ email: 'a@example.com', verified: true })),
        s.next('UserDeleted', { deletedBy: 'self' }),
      );
      const site = siteFor({ host: '127.0.0.1', port: 2525 });
      const late = s.verificationRequested('a@example.com');
      assert.deepEqual(decideNotifications(late, r, site), [
        { kind: 'suppress', email: 'email-verification', reason: 'user-deleted', userId: s.userId },
      ]);
      assert.deepEqual(decideNotifications(codeMonitorTriggered(s.userId), r, site), [
        { kind: 'suppress', email: 'code-monitor-triggered', reason: 'user-deleted', userId: s.userId },
      ]);
    });
  });
});
