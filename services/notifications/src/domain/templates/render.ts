import { buildLink, type LinkKind, type LinkTokenKey, openToken } from '@sitemail/contracts';
import { escapeHtml } from '@sitemail/service-kit';
import { type SiteConfig, senderName } from '@sitemail/site-config';
import type { EmailMessage, SealedLink } from '../emails.ts';
import { isUnsubscribable } from '../unsubscribe-token.ts';
import { BODY_TEXT_MAX, SUBJECT_TEXT_MAX, userText } from './user-text.ts';

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
  /** Headers of this email's own (RFC 8058 List-Unsubscribe on the emails a user may opt out of). */
  headers?: Record<string, string>;
}

export interface RenderContext {
  site: SiteConfig;
  /** Keys to open link tokens with (the current one and, during a rotation, older ones). */
  linkTokenKeys: LinkTokenKey | LinkTokenKey[];
  /**
   * The one-click unsubscribe URL for this email (`unsubscribeURL`), made by the sender for the
   * emails a user may opt out of. Ignored for any other kind, so a security email never carries one.
   */
  unsubscribeURL?: string;
}

/** Thrown when an email cannot be rendered (a link token that does not open); retrying cannot help. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RenderError';
  }
}

/**
 * A subject from the product's fixed wording and user parts (`user-text.ts`): each user part made
 * one plain line and cut at SUBJECT_TEXT_MAX, so the fixed words stay in view and in order.
 */
const subject = (parts: TemplateStringsArray, ...values: string[]) =>
  parts.reduce(
    (acc, part, i) => acc + part + (i < values.length ? userText(values[i]!, SUBJECT_TEXT_MAX) : ''),
    '',
  );

function openLink(
  ctx: RenderContext,
  link: SealedLink,
  kind: LinkKind,
  extra: Record<string, string> = {},
): string {
  let token: string;
  try {
    token = openToken(link.token, ctx.linkTokenKeys, link.userId, link.eventType);
  } catch (err) {
    // The error names the key id at most, never the token.
    throw new RenderError(`cannot open the link token: ${(err as Error).message}`);
  }
  // accounts' link pages read the token as `code` (and the address as `email`).
  return buildLink(ctx.site.externalURL, kind, { ...extra, code: token });
}

const formatExpiry = (iso: string) => new Date(iso).toUTCString();

/** A paragraph of HTML, from already-escaped fragments. */
const p = (html: string) => `<p style="margin:0 0 16px">${html}</p>`;
const button = (href: string, label: string) =>
  `<p style="margin:24px 0"><a href="${escapeHtml(href)}" style="background:#0b70db;color:#fff;padding:10px 16px;border-radius:4px;text-decoration:none">${escapeHtml(label)}</a></p>`;

function page(site: SiteConfig, bodyHtml: string, footerHtml = ''): string {
  const name = escapeHtml(senderName(site));
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"></head><body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;line-height:1.5;color:#24292f;max-width:600px;margin:0 auto;padding:24px">${bodyHtml}<hr style="border:none;border-top:1px solid #d0d7de;margin:24px 0"><p style="color:#57606a;font-size:13px;margin:0">${name} · <a href="${escapeHtml(site.externalURL)}" style="color:#57606a">${escapeHtml(site.externalURL)}</a></p>${footerHtml}</body></html>`;
}

function textPage(site: SiteConfig, lines: string[], footer?: string): string {
  return `${lines.join('\n\n')}\n\n--\n${senderName(site)} · ${site.externalURL}\n${footer ? `${footer}\n` : ''}`;
}

/** What the unsubscribe footer says, per kind that has one. */
const unsubscribeWhat: Partial<Record<EmailMessage['kind'], string>> = {
  'code-monitor-triggered': 'code monitor notifications',
};

/**
 * The footer and RFC 8058 headers of an email a user may opt out of: `List-Unsubscribe` (the
 * HTTPS URL only: a mailto would need an inbound address) and `List-Unsubscribe-Post`, which tells
 * the mailbox provider a POST to it unsubscribes with no further step (RFC 8058 §3.1).
 */
function unsubscribeParts(message: EmailMessage, url: string | undefined) {
  if (url === undefined || !isUnsubscribable(message.kind)) return undefined;
  const what = unsubscribeWhat[message.kind] ?? 'these emails';
  return {
    text: `Stop ${what}: ${url}`,
    html: `<p style="color:#57606a;font-size:13px;margin:8px 0 0">You get this email because of your settings on this site. <a href="${escapeHtml(url)}" style="color:#57606a">Unsubscribe from ${escapeHtml(what)}</a></p>`,
    headers: {
      'List-Unsubscribe': `<${url}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    },
  };
}

const hello = (username: string | undefined) => (username ? `Hi ${username},` : 'Hi,');

/** Renders one email from its stored inputs. Deterministic for given inputs, config and keys. */
export function renderEmail(message: EmailMessage, ctx: RenderContext): RenderedEmail {
  const site = ctx.site;
  const product = senderName(site);
  const unsubscribe = unsubscribeParts(message, ctx.unsubscribeURL);
  const build = (
    subjectLine: string,
    lines: { text: string; html: string }[],
    action?: { href: string; label: string },
  ): RenderedEmail => ({
    subject: subjectLine,
    text: textPage(
      site,
      [...lines.map((l) => l.text), ...(action ? [`${action.label}: ${action.href}`] : [])],
      unsubscribe?.text,
    ),
    html: page(
      site,
      lines.map((l) => p(l.html)).join('') + (action ? button(action.href, action.label) : ''),
      unsubscribe?.html,
    ),
    ...(unsubscribe ? { headers: unsubscribe.headers } : {}),
  });
  /**
   * A line of text with user-provided parts, each made one plain line and bounded (so none can
   * start a line of its own in the text part): as is in the text, escaped in HTML.
   */
  const line = (parts: TemplateStringsArray, ...values: (string | number)[]) => {
    const safe = values.map((v) => userText(String(v), BODY_TEXT_MAX));
    return {
      text: parts.reduce((acc, part, i) => acc + part + (i < safe.length ? safe[i] : ''), ''),
      html: parts.reduce(
        (acc, part, i) => acc + escapeHtml(part) + (i < safe.length ? escapeHtml(safe[i]!) : ''),
        '',
      ),
    };
  };

  switch (message.kind) {
    case 'email-verification': {
      const href = openLink(ctx, message.link, 'verifyEmail', { email: message.email });
      return build(
        subject`Verify your email on ${product}`,
        [
          line`${hello(message.username)}`,
          line`Please verify your email address ${message.email} on ${product} by following the link below.`,
          line`The link expires on ${formatExpiry(message.link.expiresAt)}. If you did not ask for this, ignore this email.`,
        ],
        { href, label: 'Verify email address' },
      );
    }
    case 'set-password': {
      const href = openLink(ctx, message.link, 'passwordReset');
      return build(
        subject`Set your password on ${product}`,
        [
          line`${hello(message.username)}`,
          line`A site admin created an account for you on ${product}${message.username ? ` with the username ${message.username}` : ''}.`,
          line`Set your password to sign in; this also verifies your email address ${message.email}. The link expires on ${formatExpiry(message.link.expiresAt)}.`,
        ],
        { href, label: 'Set password' },
      );
    }
    case 'password-reset': {
      const href = openLink(ctx, message.link, 'passwordReset');
      return build(
        subject`Reset your password on ${product}`,
        [
          line`${hello(message.username)}`,
          line`Somebody (hopefully you) asked to reset the password of your account on ${product}.`,
          line`The link expires on ${formatExpiry(message.link.expiresAt)}. If you did not ask for this, ignore this email; your password stays as it is.`,
        ],
        { href, label: 'Reset password' },
      );
    }
    case 'password-changed':
      return build(subject`Your password on ${product} was changed`, [
        line`${hello(message.username)}`,
        line`The password of your account on ${product} was changed on ${formatExpiry(message.at)}${message.via === 'reset-link' ? ' through a password reset link' : ''}.`,
        line`If this was not you, reset your password and tell your site admin.`,
      ]);
    case 'primary-email-changed':
      return build(subject`Your primary email on ${product} was changed`, [
        line`${hello(message.username)}`,
        line`The primary email address of your account on ${product} is now ${message.email} (it was ${message.previousEmail}).`,
        line`If this was not you, tell your site admin.`,
      ]);
    case 'api-key-created':
      return build(subject`An API key was created on your ${product} account`, [
        line`${hello(message.username)}`,
        line`An API key named "${message.keyName}" was created on your account on ${product} on ${formatExpiry(message.at)}.`,
        line`If this was not you, revoke the key and tell your site admin.`,
      ]);
    case 'site-admin-changed':
      return build(
        message.siteAdmin
          ? subject`You are now a site admin of ${product}`
          : subject`You are no longer a site admin of ${product}`,
        [
          line`${hello(message.username)}`,
          message.siteAdmin
            ? line`Your account on ${product} was made a site admin on ${formatExpiry(message.at)}.`
            : line`Your account on ${product} is no longer a site admin since ${formatExpiry(message.at)}.`,
        ],
      );
    case 'invitation': {
      const href = openLink(ctx, message.link, 'invitation', { email: message.email });
      const target = message.organization
        ? `the organization ${message.organization} on ${product}`
        : product;
      return build(
        // the organisation quoted: whatever it is named, it reads as a name, not as our words
        message.organization
          ? subject`${message.inviterUsername} invited you to join "${message.organization}" on ${product}`
          : subject`${message.inviterUsername} invited you to join ${product}`,
        [
          line`${hello(message.inviteeUsername)}`,
          line`${message.inviterUsername} invited you to join ${target}.`,
          line`The invitation expires on ${formatExpiry(message.link.expiresAt)}.`,
        ],
        { href, label: 'Accept invitation' },
      );
    }
    case 'code-monitor-triggered': {
      // resultsPath is relative to externalURL, which may itself have a path (a site behind a prefix).
      const href = `${site.externalURL.replace(/\/+$/, '')}${message.resultsPath}`;
      const results = message.resultCount === 1 ? '1 new result' : `${message.resultCount} new results`;
      return build(
        subject`[${message.monitorName}] ${results} on ${product}`,
        [
          line`${hello(message.username)}`,
          line`Your code monitor "${message.monitorName}" found ${results} for the query ${message.query}.`,
        ],
        { href, label: 'View results' },
      );
    }
    default: {
      const unhandled: never = message;
      throw new Error(`renderEmail: unhandled email ${(unhandled as { kind: string }).kind}`);
    }
  }
}
