import { describe, it } from 'node:test';
import { alice, aliceSignedUp, bob, given, now } from './spec.test-support.ts';

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
