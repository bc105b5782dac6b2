import { describe, it } from 'node:test';
import { aliceSignedUp, bob, given, later, now, sealed } from './spec.test-support.ts';

describe('InviteUser (on the inviter stream)', () => {
  const invitationId = '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7';
  const cmd = (
    email: string,
    organization?: string,
    at = now,
    holder?: { userId: string; verified: boolean },
  ) => ({
    type: 'InviteUser' as const,
    invitationId,
    email,
    ...(organization ? { organization } : {}),
    ...(holder ? { holder } : {}),
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
  it('invites an existing user who holds the address verified to an organization, naming them', () => {
    given([aliceSignedUp(true)])
      .when(cmd('bob@example.org', 'acme', now, { userId: bob, verified: true }))
      .thenEmits([invited('bob@example.org', 'acme', bob)]);
  });
  it('names nobody when the holder has not verified the address: the invitation goes to the address itself', () => {
    given([aliceSignedUp(true)])
      .when(cmd('victim@example.org', undefined, now, { userId: bob, verified: false }))
      .thenEmits([invited('victim@example.org')]);
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
