import type { SealedToken } from '@sitemail/contracts';

/** Every kind of email the service sends. */
export const emailKinds = [
  'email-verification',
  'set-password',
  'password-reset',
  'password-changed',
  'primary-email-changed',
  'api-key-created',
  'site-admin-changed',
  'invitation',
  'code-monitor-triggered',
] as const;
export type EmailKind = (typeof emailKinds)[number];

/** Why an intended email was not sent; shown to admins in the delivery log. */
export const suppressionReasons = [
  'smtp-not-configured',
  'sender-address-not-configured',
  'builtin-auth-disabled',
  'unknown-recipient',
  'no-primary-address',
  'primary-unverified',
  'address-not-on-user',
  'address-already-verified',
  'address-unverified',
  'user-deleted',
  'address-undeliverable',
  'unsubscribed',
] as const;
export type SuppressionReason = (typeof suppressionReasons)[number];

/** What a sealed link token is bound to (AES-GCM additional data): needed to open it at send time. */
export interface SealedLink {
  token: SealedToken;
  userId: string;
  eventType: string;
  expiresAt: string;
}

/**
 * The inputs of each email's template. Stored with the delivery (link tokens stay sealed) and
 * rendered at send time, so the database never holds a usable link.
 */
export type EmailMessage =
  | { kind: 'email-verification'; username?: string; email: string; link: SealedLink }
  | { kind: 'set-password'; username?: string; email: string; link: SealedLink }
  | { kind: 'password-reset'; username: string; email: string; link: SealedLink }
  | {
      kind: 'password-changed';
      username: string;
      via: 'set-password-link' | 'reset-link' | 'user';
      at: string;
    }
  | { kind: 'primary-email-changed'; username: string; email: string; previousEmail: string; at: string }
  | { kind: 'api-key-created'; username: string; keyId: string; keyName: string; at: string }
  | { kind: 'site-admin-changed'; username: string; siteAdmin: boolean; at: string }
  | {
      kind: 'invitation';
      /** The invited address (the invitation link names it), whoever the email goes to. */
      email: string;
      inviterUsername: string;
      organization?: string;
      /** The invitee's username when the address belongs to an existing user. */
      inviteeUsername?: string;
      link: SealedLink;
    }
  | {
      kind: 'code-monitor-triggered';
      username: string;
      monitorName: string;
      query: string;
      resultCount: number;
      resultsPath: string;
    };

export type EmailMessageOf<K extends EmailKind> = Extract<EmailMessage, { kind: K }>;

/** How the delivery log explains each suppression to an admin. */
export const suppressionReasonText: Record<SuppressionReason, string> = {
  'smtp-not-configured': 'SMTP is not configured (no email.smtp in the site config)',
  'sender-address-not-configured':
    'no "From" email address is configured (no email.address in the site config)',
  'builtin-auth-disabled':
    'builtin (password) authentication is disabled (auth.providers has no builtin entry)',
  'unknown-recipient': 'the recipient is not a known user',
  'no-primary-address': 'the user has no primary email address',
  'primary-unverified': "the user's primary email address is not verified",
  'address-not-on-user': 'the address no longer belongs to the user',
  'address-already-verified': 'the address is already verified',
  'address-unverified': 'the address is not verified',
  'user-deleted': 'the user was deleted (its addresses and the email were erased)',
  'address-undeliverable':
    'the address is on the suppression list: an earlier email to it got a final reply that the mailbox does not exist (GET /suppressions/{address})',
  unsubscribed:
    'the user unsubscribed from these emails (the one-click link in an earlier one); security emails are never unsubscribable',
};
