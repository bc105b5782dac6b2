import { randomUUID } from 'node:crypto';
import type { InvitationView } from '../../store/queries.ts';
import type { AccountsContext } from '../context.ts';
import { invalidLink } from '../errors.ts';
import { openLink } from '../links.ts';

/** Invitations, decided on the inviter's stream; accepting one is signing up with its code. */
export function invitationUseCases(ctx: AccountsContext) {
  return {
    /** Invites an address to the instance or to an organization. */
    async invite(inviterId: string, email: string, organization?: string) {
      await ctx.getUser(inviterId);
      const owner = await ctx.queries.emailOwner(email);
      const invitationId = randomUUID();
      const events = await ctx.run(inviterId, () => ({
        type: 'InviteUser',
        invitationId,
        email,
        ...(organization === undefined ? {} : { organization }),
        // Who receives it is the decider's rule: only a verified holder is named (and mailed).
        ...(owner && owner.userId !== inviterId ? { holder: owner } : {}),
        seal: ctx.sealerFor(inviterId),
        now: ctx.clock(),
      }));
      const invitation = await ctx.queries.invitation(invitationId);
      if (!invitation) throw new Error('created invitation missing from the read model');
      return { invitation, events };
    },

    /** What an invitation link shows, without using it (sign-up with the code uses it). */
    async describeInvitation(code: string, email: string): Promise<InvitationView> {
      const link = await openLink(ctx, code, ['UserInvited'], email);
      const invitation = link.invitationId ? await ctx.queries.invitation(link.invitationId) : null;
      if (!invitation) throw invalidLink();
      return invitation;
    },
  };
}
