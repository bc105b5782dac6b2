import type { InviteUser } from './commands.ts';
import type { Decision } from './decision.ts';
import { expires } from './links.ts';
import { refuse } from './refusals.ts';
import type { ActiveUser } from './types.ts';

/** Decided on the inviter's stream: one pending invitation per address and place. */
export function inviteUser(command: InviteUser, inviter: ActiveUser): Decision {
  if (inviter.emails.some((e) => e.email === command.email))
    return refuse('cannot-invite-own-email', 'you cannot invite your own address', 'email');
  const pending = inviter.invitations.some(
    (i) =>
      i.email === command.email &&
      i.organization === command.organization &&
      Date.parse(i.expiresAt) > command.now.getTime(),
  );
  if (pending) {
    return refuse(
      'already-invited',
      `${command.email} already has a pending invitation${command.organization ? ` to ${command.organization}` : ''}`,
      'email',
    );
  }
  return [
    {
      type: 'UserInvited',
      data: {
        invitationId: command.invitationId,
        email: command.email,
        inviterUsername: inviter.username,
        ...(command.organization === undefined ? {} : { organization: command.organization }),
        ...(command.inviteeUserId === undefined ? {} : { inviteeUserId: command.inviteeUserId }),
        token: command.seal('UserInvited'),
        expiresAt: expires(command.now, 'UserInvited'),
      },
    },
  ];
}
