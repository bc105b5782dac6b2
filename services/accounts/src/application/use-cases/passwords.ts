import type { StoredEvent } from '@sitemail/event-store';
import { passwordResetUnavailable } from '../../domain/user/index.ts';
import { savePasswordHash, usePasswordLinks } from '../../store/side-tables.ts';
import type { AccountsContext } from '../context.ts';
import { RefusalError, refused, wrongPassword } from '../errors.ts';
import { openLink, useLinkOnce } from '../links.ts';
import { hashPassword, verifyPassword } from '../passwords.ts';

const PASSWORD_LINKS = ['PasswordSetLinkRequested', 'PasswordResetRequested'] as const;

/** Passwords: set by a set-password or reset link, changed by the user, reset requested. Never in an event. */
export function passwordUseCases(ctx: AccountsContext) {
  return {
    /** Describes a password link (for the page the link opens) without using it. */
    async describePasswordLink(code: string) {
      const link = await openLink(ctx, code, [...PASSWORD_LINKS]);
      return {
        kind: link.kind === 'PasswordSetLinkRequested' ? ('set-password' as const) : ('reset' as const),
        email: link.email,
        expiresAt: link.expiresAt,
      };
    },

    /**
     * Following a set-password or reset link with a new password. A set-password link also
     * verifies the address it was sent to. Every other password link of the user dies with it.
     */
    async setPasswordByLink(code: string, password: string) {
      const link = await openLink(ctx, code, [...PASSWORD_LINKS]);
      const hash = await hashPassword(password, ctx.passwordCost);
      const via =
        link.kind === 'PasswordSetLinkRequested' ? ('set-password-link' as const) : ('reset-link' as const);
      const events = await ctx.run(
        link.userId,
        () => ({ type: 'SetPasswordByLink', via, email: link.email, site: ctx.site(), now: ctx.clock() }),
        {
          alsoWrite: async (tx, events) => {
            const at = events[0]?.time ?? ctx.clock().toISOString();
            await useLinkOnce(tx, link.sha256, at);
            await usePasswordLinks(tx, link.userId, at);
            await savePasswordHash(tx, link.userId, hash, at);
          },
        },
      );
      return { user: await ctx.getUser(link.userId), events };
    },

    /** The user changes their own password, proving the current one; outstanding reset links die. */
    async changePassword(userId: string, currentPassword: string, newPassword: string) {
      const current = await ctx.queries.passwordHash(userId);
      const ok = await verifyPassword(currentPassword, current ?? (await ctx.decoyHash()));
      if (current === null || !ok) throw wrongPassword();
      const hash = await hashPassword(newPassword, ctx.passwordCost);
      const events = await ctx.run(
        userId,
        () => ({ type: 'ChangePassword', site: ctx.site(), now: ctx.clock() }),
        {
          alsoWrite: async (tx, events) => {
            const at = events[0]?.time ?? ctx.clock().toISOString();
            await savePasswordHash(tx, userId, hash, at);
            await usePasswordLinks(tx, userId, at);
          },
        },
      );
      return { events };
    },

    /**
     * A password reset request. Refused for everyone alike on single-sign-on sites and without
     * SMTP; for an address that is unknown or unverified it does nothing and says the same as on
     * success, so the answer does not tell who has an account.
     */
    async requestPasswordReset(email: string): Promise<{ events: StoredEvent[] }> {
      const policy = ctx.site();
      const owner = await ctx.queries.emailOwner(email);
      const unavailable = passwordResetUnavailable(policy);
      if (unavailable) throw refused(unavailable);
      if (!owner) return { events: [] };
      try {
        const events = await ctx.run(owner.userId, () => ({
          type: 'RequestPasswordReset',
          email,
          site: policy,
          seal: ctx.sealerFor(owner.userId),
          now: ctx.clock(),
        }));
        return { events };
      } catch (err) {
        if (err instanceof RefusalError && err.refusal.refusal === 'email-not-verified')
          return { events: [] };
        throw err;
      }
    },
  };
}
