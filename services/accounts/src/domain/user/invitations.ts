import type { InviteUser } from './commands.ts';
import type { Decision } from './decision.ts';
import { expires } from './links.ts';
import { refuse } from './refusals.ts';
import type { ActiveUser } from './types.ts';

/**
 * Decided on the inviter's stream: one pending invitation per address and place. Who the email
 * goes to follows from `inviteeUserId`: set, it goes to that user's verified primary address;
 * absent, to the invited address itself. Only a user who holds the address *verified* is named:
 * someone who merely added it (unverified) has proven nothing, and naming them would mail them
 * the code of an address they do not control, so the invitation goes to the address, the only
 * party that can prove it.
 */
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
        ...(command.holder?.verified ? { inviteeUserId: command.holder.userId } : {}),
        token: command.seal('UserInvited'),
        expiresAt: expires(command.now, 'UserInvited'),
      },
    },
  ];
}
