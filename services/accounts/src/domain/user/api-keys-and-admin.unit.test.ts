import { describe, it } from 'node:test';
import { alice, aliceSignedUp, bob, given, later, now, sealed } from './spec.test-support.ts';

const keyId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c61';
const otherKeyId = '1a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c62';
const sha = 'b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9';
const keyCreated = (id = keyId, name = 'CI') => ({
  type: 'ApiKeyCreated' as const,
  data: { keyId: id, name, createdBy: alice, secretSha256: sha },
});

describe('CreateApiKey', () => {
  const cmd = (name: string, id = keyId) => ({
    type: 'CreateApiKey' as const,
    keyId: id,
    name,
    secretSha256: sha,
    by: alice,
    now,
  });
  it('creates a key carrying its id, name, creator and secret hash', () => {
    given([aliceSignedUp(true)])
      .when(cmd('CI'))
      .thenEmits([keyCreated()]);
  });
  it('refuses a second active key with the same name', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd('CI', otherKeyId))
      .thenRefused('api-key-name-taken', 'name');
  });
  it('allows the name again once that key is revoked', () => {
    given([aliceSignedUp(true), keyCreated(), { type: 'ApiKeyRevoked', data: { keyId, revokedBy: alice } }])
      .when(cmd('CI', otherKeyId))
      .thenEmits([keyCreated(otherKeyId)]);
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd('CI')).thenRefused('user-not-found');
  });
});

describe('RevokeApiKey', () => {
  const cmd = (id = keyId) => ({ type: 'RevokeApiKey' as const, keyId: id, by: bob, now });
  it('revokes an active key, naming who did', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd())
      .thenEmits([{ type: 'ApiKeyRevoked', data: { keyId, revokedBy: bob } }]);
  });
  it('refuses an unknown key', () => {
    given([aliceSignedUp(true), keyCreated()])
      .when(cmd(otherKeyId))
      .thenRefused('api-key-not-found', 'keyId');
  });
  it('refuses a key revoked already', () => {
    given([aliceSignedUp(true), keyCreated(), { type: 'ApiKeyRevoked', data: { keyId, revokedBy: alice } }])
      .when(cmd())
      .thenRefused('api-key-not-found', 'keyId');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd()).thenRefused('user-not-found');
  });
});

describe('SetSiteAdmin', () => {
  const cmd = (siteAdmin: boolean, by = bob) => ({ type: 'SetSiteAdmin' as const, siteAdmin, by, now });
  const member = { ...aliceSignedUp(true), data: { ...aliceSignedUp(true).data, siteAdmin: false } };
  it('makes a user site admin', () => {
    given([member])
      .when(cmd(true))
      .thenEmits([{ type: 'SiteAdminChanged', data: { siteAdmin: true, changedBy: bob } }]);
  });
  it('unmakes a site admin', () => {
    given([aliceSignedUp(true)])
      .when(cmd(false))
      .thenEmits([{ type: 'SiteAdminChanged', data: { siteAdmin: false, changedBy: bob } }]);
  });
  it('does nothing when the user is in that state already', () => {
    given([member]).when(cmd(false)).thenNothingHappened();
  });
  it('refuses an admin changing their own status', () => {
    given([aliceSignedUp(true)])
      .when(cmd(false, alice))
      .thenRefused('cannot-change-own-site-admin', 'siteAdmin');
  });
  it('refuses an unknown user', () => {
    given([]).when(cmd(true)).thenRefused('user-not-found');
  });
});

describe('InviteUser (on the inviter stream)', () => {
  const invitationId = '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7';
  const cmd = (email: string, organization?: string, at = now, inviteeUserId?: string) => ({
    type: 'InviteUser' as const,
    invitationId,
    email,
    ...(organization ? { organization } : {}),
    ...(inviteeUserId ? { inviteeUserId } : {}),
    seal: sealed,
    now: at,
  });
  const invited = (email: string, organization?: string, inviteeUserId?: string) => ({
    type: 'UserInvited' as const,
    data: {
      invitationId,
      email,
      inviterUsername: 'alice',
      ...(organization ? { organization } : {}),
      ...(inviteeUserId ? { inviteeUserId } : {}),
      token: sealed('UserInvited'),
      expiresAt: '2026-12-02T10:00:00.000Z',
    },
  });
  it('invites an address to the instance', () => {
    given([aliceSignedUp(true)])
      .when(cmd('carol@example.org'))
      .thenEmits([invited('carol@example.org')]);
  });
  it('invites an existing user to an organization', () => {
    given([aliceSignedUp(true)])
      .when(cmd('bob@example.org', 'acme', now, bob))
      .thenEmits([invited('bob@example.org', 'acme', bob)]);
  });
  it('refuses inviting one of your own addresses', () => {
    given([aliceSignedUp(true)])
      .when(cmd('alice@example.com'))
      .thenRefused('cannot-invite-own-email', 'email');
  });
  it('refuses a second pending invitation of the address to the same place', () => {
    given([aliceSignedUp(true), invited('carol@example.org', 'acme')])
      .when(cmd('carol@example.org', 'acme'))
      .thenRefused('already-invited', 'email');
  });
  it('allows the same address to another organization, and again once the invitation expired', () => {
    given([aliceSignedUp(true), invited('carol@example.org', 'acme')])
      .when(cmd('carol@example.org'))
      .thenEmits([invited('carol@example.org')]);
    const eightDays = later(8 * 24 * 3600_000);
    const expected = invited('carol@example.org', 'acme');
    expected.data.expiresAt = new Date(eightDays.getTime() + 7 * 24 * 3600_000).toISOString();
    given([aliceSignedUp(true), invited('carol@example.org', 'acme')])
      .when(cmd('carol@example.org', 'acme', eightDays))
      .thenEmits([expected]);
  });
  it('refuses an unknown inviter', () => {
    given([]).when(cmd('carol@example.org')).thenRefused('user-not-found');
  });
});
