import type { UserCommand } from '../../domain/user/index.ts';
import { violatedUniqueRule } from '../../store/unique-violations.ts';
import type { RunOptions } from '../command-runner.ts';
import type { AccountsContext } from '../context.ts';
import { emailTaken, uniqueConflict } from '../errors.ts';
import { openLink, useLinkOnce } from '../links.ts';

/** A user's addresses: add, remove, make primary, verify (by link or by a site admin). */
export function addressUseCases(ctx: AccountsContext) {
  /** Runs a command that changes an address of the user, then answers the user as it is now. */
  async function onEmail(
    userId: string,
    email: string,
    command: () => UserCommand,
    options: RunOptions = {},
  ) {
    await ctx.getUser(userId);
    try {
      const events = await ctx.run(userId, command, options);
      return { user: await ctx.getUser(userId), events };
    } catch (err) {
      // Another user took the address between our check and the append: its unique index said so.
      const rule = violatedUniqueRule(err);
      if (rule) throw uniqueConflict(rule, { email });
      throw err;
    }
  }

  return {
    async addEmail(userId: string, email: string, expectedVersion?: number) {
      const owner = await ctx.queries.emailOwner(email);
      if (owner && owner.userId !== userId) throw emailTaken(email);
      return onEmail(
        userId,
        email,
        () => ({ type: 'AddEmail', email, site: ctx.site(), seal: ctx.sealerFor(userId), now: ctx.clock() }),
        { expectedVersion },
      );
    },

    async removeEmail(userId: string, email: string, expectedVersion?: number) {
      return onEmail(userId, email, () => ({ type: 'RemoveEmail', email, now: ctx.clock() }), {
        expectedVersion,
      });
    },

    async setPrimaryEmail(userId: string, email: string, expectedVersion?: number) {
      return onEmail(userId, email, () => ({ type: 'SetPrimaryEmail', email, now: ctx.clock() }), {
        expectedVersion,
      });
    },

    async requestEmailVerification(userId: string, email: string) {
      return onEmail(userId, email, () => ({
        type: 'RequestEmailVerification',
        email,
        site: ctx.site(),
        seal: ctx.sealerFor(userId),
        now: ctx.clock(),
      }));
    },

    async setEmailVerified(
      userId: string,
      email: string,
      verified: boolean,
      by: string,
      expectedVersion?: number,
    ) {
      return onEmail(
        userId,
        email,
        () => ({ type: 'SetEmailVerified', email, verified, by, now: ctx.clock() }),
        { expectedVersion },
      );
    },

    /** Following a verification link: single use, expiring, for the address it was sent to. */
    async verifyEmailByLink(code: string, email: string) {
      const link = await openLink(ctx, code, ['EmailVerificationRequested'], email);
      return onEmail(link.userId, email, () => ({ type: 'VerifyEmailByLink', email, now: ctx.clock() }), {
        alsoWrite: (tx, events) => useLinkOnce(tx, link.sha256, events[0]?.time ?? ctx.clock().toISOString()),
        // A link to an address verified meanwhile decides nothing, but is used up all the same.
        writeWhenNoEvents: true,
      });
    },
  };
}
