import { createApiKey, revokeApiKey } from './api-keys.ts';
import type { UserCommand } from './commands.ts';
import { createUser } from './create-user.ts';
import type { Decision } from './decision.ts';
import { deleteUser } from './delete-user.ts';
import {
  addEmail,
  removeEmail,
  requestEmailVerification,
  setEmailVerified,
  setPrimaryEmail,
  verifyEmailByLink,
} from './emails.ts';
import { inviteUser } from './invitations.ts';
import { changePassword, requestPasswordReset, setPasswordByLink } from './passwords.ts';
import { refuse, userNotFound } from './refusals.ts';
import { setSiteAdmin } from './site-admin.ts';
import type { UserState } from './types.ts';

export type { Decision } from './decision.ts';
export { MAX_UNVERIFIED_EMAILS, VERIFICATION_RESEND_INTERVAL_MS } from './emails.ts';
export { linkLifetimes } from './links.ts';
export { passwordResetUnavailable } from './passwords.ts';

/**
 * Decides which events a command produces on a user's stream, or why it is refused. Pure: the
 * time, the site policy, fresh ids and the token sealer all come in the command. Each command
 * group's rules live in their own file (emails, passwords, API keys, site admin, invitations).
 */
export function decide(command: UserCommand, state: UserState): Decision {
  if (command.type === 'CreateUser') {
    if (state.status !== 'none') return refuse('user-exists', 'the user already exists', 'userId');
    return createUser(command);
  }
  if (command.type === 'DeleteUser') return deleteUser(command, state);
  if (state.status !== 'active') return userNotFound();
  switch (command.type) {
    case 'AddEmail':
      return addEmail(command, state);
    case 'RemoveEmail':
      return removeEmail(command, state);
    case 'SetPrimaryEmail':
      return setPrimaryEmail(command, state);
    case 'RequestEmailVerification':
      return requestEmailVerification(command, state);
    case 'VerifyEmailByLink':
      return verifyEmailByLink(command, state);
    case 'SetEmailVerified':
      return setEmailVerified(command, state);
    case 'SetPasswordByLink':
      return setPasswordByLink(command, state);
    case 'ChangePassword':
      return changePassword(command);
    case 'RequestPasswordReset':
      return requestPasswordReset(command, state);
    case 'CreateApiKey':
      return createApiKey(command, state);
    case 'RevokeApiKey':
      return revokeApiKey(command, state);
    case 'SetSiteAdmin':
      return setSiteAdmin(command, state);
    case 'InviteUser':
      return inviteUser(command, state);
    default: {
      const unexpected: never = command;
      throw new Error(`unknown command ${(unexpected as { type: string }).type}`);
    }
  }
}
