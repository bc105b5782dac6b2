import type { DeleteUser } from './commands.ts';
import type { Decision } from './decision.ts';
import { refuse, userNotFound } from './refusals.ts';
import type { UserState } from './types.ts';

/**
 * Deleting a user for real (GDPR art. 17). `UserDeleted` carries no personal data; appending it
 * destroys the user's data key in the same transaction (store/personal-data.ts), which leaves the
 * personal fields of every earlier event unreadable. Refused: a user deleted already (nothing
 * is left to erase), a wrong or missing re-confirmation, and the site's last site admin (a site
 * without one can no longer be administered).
 */
export function deleteUser(command: DeleteUser, state: UserState): Decision {
  if (state.status === 'deleted') return refuse('user-already-deleted', 'the user is already deleted');
  if (state.status !== 'active') return userNotFound();
  if (command.credential !== 'valid') {
    return command.deletedBy === 'self'
      ? refuse(
          'wrong-credential',
          command.credential === 'missing'
            ? 'confirm deleting your account with your password'
            : 'the password is wrong',
          'password',
        )
      : refuse('wrong-credential', 'only a site admin can delete another user');
  }
  if (state.siteAdmin && command.otherSiteAdmins === 0) {
    return refuse(
      'last-site-admin',
      'the last site admin cannot be deleted: make another user site admin first',
    );
  }
  return [{ type: 'UserDeleted', data: { deletedBy: command.deletedBy } }];
}
