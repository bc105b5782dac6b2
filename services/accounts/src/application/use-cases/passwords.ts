import { passwordResetUnavailable, type RefusalCode } from '../../domain/user/index.ts';
import { savePasswordHash, usePasswordLinks } from '../../store/side-tables.ts';
import type { AccountsContext } from '../context.ts';
import { RefusalError, refused, wrongPassword } from '../errors.ts';
import { openLink, useLinkOnce } from '../links.ts';
import { checkPasswordGuarded } from '../password-guard.ts';
import { hashPassword, verifyPassword } from '../passwords.ts';

/** Refusals a reset request keeps to itself: saying them would tell that the address has an account. */
const silentResetRefusals = new Set<RefusalCode>([
  'email-not-verified',
  'email-not-found',
  'sent-too-recently',
  'user-not-found',
]);

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
      // The same per-account throttle as password sign-in: a stolen API key must not become a
      // way to guess the password behind it.
      const ok = await checkPasswordGuarded(ctx, `user:${userId}`, async () =>
        verifyPassword(currentPassword, current ?? (await ctx.decoyHash())),
      );
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
     * SMTP. Otherwise the answer is the same whatever the address, and given before anything is
     * looked up: the work (find the owner, decide, append) runs after the reply, so neither the
     * answer nor its timing tells who has an account. The decider sends nothing for an unknown or
     * unverified address, or one that got a reset email too recently (the per-address throttle).
     * The result resolves once that work is done (the HTTP layer does not wait for it).
     */
    requestPasswordReset(email: string, onError?: (err: unknown) => void): Promise<void> {
      const policy = ctx.site();
      const unavailable = passwordResetUnavailable(policy);
      if (unavailable) throw refused(unavailable);
      return ctx.deferred.run(async () => {
        const owner = await ctx.queries.emailOwner(email);
        if (!owner) return;
        try {
          await ctx.run(owner.userId, () => ({
            type: 'RequestPasswordReset',
            email,
            site: ctx.site(),
            seal: ctx.sealerFor(owner.userId),
            now: ctx.clock(),
          }));
        } catch (err) {
          if (err instanceof RefusalError && silentResetRefusals.has(err.refusal.refusal)) return;
          throw err;
        }
      }, onError);
    },

    /** Resolves when the work of earlier answers (reset requests) is done. */
    idle: () => ctx.deferred.idle(),
  };
}
