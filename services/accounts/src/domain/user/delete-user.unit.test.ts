import { describe, it } from 'node:test';
import type { DeleteUser } from './commands.ts';
import { aliceSignedUp, given, now } from './spec.test-support.ts';

const cmd = (over: Partial<DeleteUser> = {}): DeleteUser => ({
  type: 'DeleteUser',
  deletedBy: 'self',
  credential: 'valid',
  otherSiteAdmins: 1,
  now,
  ...over,
});
const member = { ...aliceSignedUp(true), data: { ...aliceSignedUp(true).data, siteAdmin: false } };
const deleted = { type: 'UserDeleted' as const, data: { deletedBy: 'self' as const } };

describe('DeleteUser', () => {
  it('deletes a user who re-confirmed with their own credential', () => {
    given([member])
      .when(cmd())
      .thenEmits([{ type: 'UserDeleted', data: { deletedBy: 'self' } }]);
  });

  it('a site admin deletes another user, whatever that user holds', () => {
    given([member, { type: 'EmailAdded', data: { email: 'alice@work.example' } }])
      .when(cmd({ deletedBy: 'site-admin', otherSiteAdmins: 0 }))
      .thenEmits([{ type: 'UserDeleted', data: { deletedBy: 'site-admin' } }]);
  });

  it('deletes a site admin while another site admin remains', () => {
    given([aliceSignedUp(true)])
      .when(cmd({ otherSiteAdmins: 1 }))
      .thenEmits([{ type: 'UserDeleted', data: { deletedBy: 'self' } }]);
  });

  it('refuses the last site admin', () => {
    given([aliceSignedUp(true)])
      .when(cmd({ otherSiteAdmins: 0 }))
      .thenRefused('last-site-admin');
  });

  it('refuses a wrong password, and none, from the user themself', () => {
    given([member])
      .when(cmd({ credential: 'wrong' }))
      .thenRefused('wrong-credential', 'password');
    given([member])
      .when(cmd({ credential: 'missing' }))
      .thenRefused('wrong-credential', 'password');
  });

  it('refuses another user without a site admin credential', () => {
    given([member])
      .when(cmd({ deletedBy: 'site-admin', credential: 'wrong' }))
      .thenRefused('wrong-credential');
  });

  it('refuses a user deleted already, and one that never existed', () => {
    given([member, deleted]).when(cmd()).thenRefused('user-already-deleted');
    given([]).when(cmd()).thenRefused('user-not-found');
  });

  it('a deleted user takes no other command: it is not found', () => {
    given([member, deleted])
      .when({ type: 'SetSiteAdmin', siteAdmin: true, by: 'someone', now })
      .thenRefused('user-not-found');
  });

  it('a history whose personal fields are shredded folds into deleted, never a crash', () => {
    const shredded = {
      type: 'UserCreated' as const,
      // What the store hands over once the key is gone: the personal fields are absent.
      data: { emailVerified: true, origin: 'api', authProvider: { type: 'builtin' }, siteAdmin: false },
      userId: '0b6f4c1e-8d1a-4b9e-9a57-3f2d1c0e5a11',
      time: now.toISOString(),
      shredded: true as const,
    };
    // biome-ignore lint/suspicious/noExplicitAny: a shredded event lacks the fields its type requires
    given([shredded as any, deleted])
      .when(cmd())
      .thenRefused('user-already-deleted');
    // biome-ignore lint/suspicious/noExplicitAny: as above
    given([shredded as any])
      .when({
        type: 'AddEmail',
        email: 'x@example.com',
        site: { smtpConfigured: false, builtinAuth: true },
        seal: () => {
          throw new Error('no');
        },
        now,
      })
      .thenRefused('user-not-found');
  });
});
