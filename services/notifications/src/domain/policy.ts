import type { FleetEvent } from '@sitemail/contracts';
import { builtinAuthEnabled, type SiteConfig } from '@sitemail/site-config';
import { type Decision, send, suppress } from './decision.ts';
import { type EmailKind, type EmailMessage, emailKinds } from './emails.ts';

import { findAddress, primaryAddress, type Recipient } from './recipient.ts';
import { isUnsubscribable } from './unsubscribe-token.ts';

/**
 * Whose recipient state the policy needs for an event: the invitee for an invitation of an
 * existing user (the event itself is in the inviter's stream), the event's user otherwise.
 */
export function recipientUserIdFor(event: FleetEvent): string | undefined {
  if (event.type === 'UserInvited') return event.data.inviteeUserId;
  return event.userId;
}

/**
 * Product emails go to the user's primary address, and only when it is verified. `crossStream`:
 * the event is not in the recipient's own stream (another topic, or an invitation in the inviter's
 * stream), so an unknown recipient may simply not have reached notifications yet and is waited for;
 * in the user's own stream UserCreated comes first, so unknown there stays unknown.
 */
function toVerifiedPrimary(
  recipient: Recipient | undefined,
  userId: string,
  message: (r: Recipient) => EmailMessage,
  email: EmailKind,
  crossStream = false,
): Decision {
  if (!recipient) {
    return crossStream
      ? { kind: 'await-recipient', email, reason: 'unknown-recipient', userId }
      : suppress(email, 'unknown-recipient', userId);
  }
  const primary = primaryAddress(recipient);
  if (!primary) return suppress(email, 'no-primary-address', recipient.userId);
  if (!primary.verified) return suppress(email, 'primary-unverified', recipient.userId, primary.email);
  return send(message(recipient), primary.email, recipient.userId);
}

/** Emails that verify an address go to it even though it is unverified, as long as it is still the user's. */
function toAddressBeingVerified(
  recipient: Recipient | undefined,
  userId: string,
  address: string,
  message: EmailMessage,
): Decision {
  if (recipient) {
    const known = findAddress(recipient, address);
    if (!known) return suppress(message.kind, 'address-not-on-user', userId, address);
    if (known.verified && message.kind === 'email-verification') {
      return suppress(message.kind, 'address-already-verified', userId, address);
    }
  }
  return send(message, address, userId);
}

/** Nothing can be sent without an SMTP server and a From address; the would-be address is kept for the log. */
type LinkEvent = Extract<
  FleetEvent,
  { type: 'EmailVerificationRequested' | 'PasswordSetLinkRequested' | 'PasswordResetRequested' }
>;

/** The sealed link an email carries, bound to the event that asked for it (opened only at render). */
const linkOf = (event: LinkEvent) => ({
  token: event.data.token,
  userId: event.userId,
  eventType: event.type,
  expiresAt: event.data.expiresAt,
});

function gateOnSmtp(site: SiteConfig, decision: Decision): Decision {
  if (decision.kind !== 'send') return decision;
  if (!site['email.smtp'])
    return suppress(decision.email, 'smtp-not-configured', decision.userId, decision.to);
  if (!site['email.address']) {
    return suppress(decision.email, 'sender-address-not-configured', decision.userId, decision.to);
  }
  return decision;
}

/**
 * Emails still tried to an address on the suppression list: they ask the user to prove the address
 * works (the user may have fixed their mailbox), and the one accepted lifts the suppression.
 */
export const triedDespiteSuppression: ReadonlySet<EmailKind> = new Set<EmailKind>([
  'email-verification',
  'set-password',
]);

/** What the suppression list and the user's opt-outs stop: one email's standing suppression. */
export type StandingSuppression = 'unsubscribed' | 'address-undeliverable';

/**
 * Whether the suppression list or the user's opt-outs stop an email of `kind`: `undeliverable`,
 * its address is listed; `unsubscribed`, its recipient opted out of the kind. The one rule for
 * both moments it is applied: when an event is decided (`decideNotifications`) and when a queued
 * email is claimed for sending (`standingSuppressionRules`, joined by the claim's SQL), so an
 * email queued before the address was listed or the user opted out is stopped by the same rule.
 */
export function standingSuppression(
  kind: EmailKind,
  o: { undeliverable: boolean; unsubscribed: boolean },
): StandingSuppression | undefined {
  // The user's own choice comes first: no need to say the address bounced as well. Only kinds
  // `isUnsubscribable` allows: a stored row can never silence a security email.
  if (o.unsubscribed && isUnsubscribable(kind)) return 'unsubscribed';
  if (o.undeliverable && !triedDespiteSuppression.has(kind)) return 'address-undeliverable';
  return undefined;
}

/**
 * `standingSuppression` over every email kind and case, as rows (only the ones that suppress):
 * the claim (store/queue.ts) looks each claimed delivery's case up in it instead of restating the
 * rule in SQL.
 */
export function standingSuppressionRules(): {
  kind: EmailKind;
  undeliverable: boolean;
  unsubscribed: boolean;
  reason: StandingSuppression;
}[] {
  return emailKinds.flatMap((kind) =>
    [false, true].flatMap((undeliverable) =>
      [false, true].flatMap((unsubscribed) => {
        const reason = standingSuppression(kind, { undeliverable, unsubscribed });
        return reason ? [{ kind, undeliverable, unsubscribed, reason }] : [];
      }),
    ),
  );
}

/** The suppression list as the policy sees it: is this address (any case) undeliverable? */
export type UndeliverableAddresses = ReadonlySet<string>;

/**
 * The email kinds the event's recipient unsubscribed from (one-click links, `store/unsubscribes.ts`).
 * Only kinds `isUnsubscribable` allows are honoured: a stored row can never silence a security email.
 */
export type UnsubscribedKinds = ReadonlySet<EmailKind>;

/**
 * Which emails an event causes, given the recipient (as it stands once the event is applied; see
 * `recipientUserIdFor`), the site config in force and the addresses on the suppression list
 * (lower-cased; `sendAddressesOf` says which to look up), and the kinds the recipient unsubscribed
 * from (`unsubscribableSendsOf` says whether to look them up). Pure: no I/O, no clock.
 */
export function decideNotifications(
  event: FleetEvent,
  recipient: Recipient | undefined,
  site: SiteConfig,
  undeliverable: UndeliverableAddresses = new Set(),
  unsubscribed: UnsubscribedKinds = new Set(),
): Decision[] {
  const decisions = decideIgnoringSmtp(event, recipient, site).map((d) => gateOnSmtp(site, d));
  // A deleted user gets nothing, and the log keeps no address of theirs (issue 13's erasure).
  if (recipient?.deleted) return decisions.map((d) => suppress(d.email, 'user-deleted', recipient.userId));
  return decisions.map((d) => {
    if (d.kind !== 'send') return d;
    const reason = standingSuppression(d.email, {
      undeliverable: undeliverable.has(d.to.toLowerCase()),
      unsubscribed: recipient !== undefined && d.userId === recipient.userId && unsubscribed.has(d.email),
    });
    return reason ? suppress(d.email, reason, d.userId, d.to) : d;
  });
}

/** Whether any decision sends an email its recipient could have unsubscribed from (then look the user's up). */
export function unsubscribableSendsOf(decisions: Decision[]): boolean {
  return decisions.some((d) => d.kind === 'send' && d.userId !== undefined && isUnsubscribable(d.email));
}

/** The addresses the decisions would send to (lower-cased): the ones to look up on the suppression list. */
export function sendAddressesOf(decisions: Decision[]): string[] {
  return [...new Set(decisions.flatMap((d) => (d.kind === 'send' ? [d.to.toLowerCase()] : [])))];
}

function decideIgnoringSmtp(
  event: FleetEvent,
  recipient: Recipient | undefined,
  site: SiteConfig,
): Decision[] {
  switch (event.type) {
    case 'UserCreated':
    case 'EmailAdded':
    case 'EmailVerified':
    case 'EmailUnverified':
    case 'EmailRemoved':
    case 'ApiKeyRevoked':
    case 'UserDeleted': // erasure is the recipient projection's and the delivery log's business (issue 13)
      // No email of their own: the verification request that follows an added address is its own event.
      return [];
    case 'EmailVerificationRequested':
      return [
        toAddressBeingVerified(recipient, event.userId, event.data.email, {
          kind: 'email-verification',
          ...(recipient ? { username: recipient.username } : {}),
          email: event.data.email,
          link: linkOf(event),
        }),
      ];
    case 'PasswordSetLinkRequested':
      if (!builtinAuthEnabled(site)) {
        return [suppress('set-password', 'builtin-auth-disabled', event.userId, event.data.email)];
      }
      return [
        toAddressBeingVerified(recipient, event.userId, event.data.email, {
          kind: 'set-password',
          ...(recipient ? { username: recipient.username } : {}),
          email: event.data.email,
          link: linkOf(event),
        }),
      ];
    case 'PasswordResetRequested': {
      if (!builtinAuthEnabled(site)) {
        return [suppress('password-reset', 'builtin-auth-disabled', event.userId, event.data.email)];
      }
      if (!recipient)
        return [suppress('password-reset', 'unknown-recipient', event.userId, event.data.email)];
      // A reset link is as good as the password: only to an address the user has proven to own.
      const address = findAddress(recipient, event.data.email);
      if (!address)
        return [suppress('password-reset', 'address-not-on-user', event.userId, event.data.email)];
      if (!address.verified)
        return [suppress('password-reset', 'address-unverified', event.userId, address.email)];
      return [
        send(
          {
            kind: 'password-reset',
            username: recipient.username,
            email: address.email,
            link: linkOf(event),
          },
          address.email,
          event.userId,
        ),
      ];
    }
    case 'PasswordChanged':
      // Setting the first password through the set-password link is what the user just did; nothing to tell.
      if (event.data.via === 'set-password-link') return [];
      return [
        toVerifiedPrimary(
          recipient,
          event.userId,
          (r) => ({ kind: 'password-changed', username: r.username, via: event.data.via, at: event.time }),
          'password-changed',
        ),
      ];
    case 'PrimaryEmailChanged':
      return [
        toVerifiedPrimary(
          recipient,
          event.userId,
          (r) => ({
            kind: 'primary-email-changed',
            username: r.username,
            email: event.data.email,
            previousEmail: event.data.previousEmail,
            at: event.time,
          }),
          'primary-email-changed',
        ),
      ];
    case 'ApiKeyCreated':
      return [
        toVerifiedPrimary(
          recipient,
          event.userId,
          (r) => ({
            kind: 'api-key-created',
            username: r.username,
            keyId: event.data.keyId,
            keyName: event.data.name,
            at: event.time,
          }),
          'api-key-created',
        ),
      ];
    case 'SiteAdminChanged':
      return [
        toVerifiedPrimary(
          recipient,
          event.userId,
          (r) => ({
            kind: 'site-admin-changed',
            username: r.username,
            siteAdmin: event.data.siteAdmin,
            at: event.time,
          }),
          'site-admin-changed',
        ),
      ];
    case 'UserInvited': {
      const link = {
        token: event.data.token,
        userId: event.userId,
        eventType: event.type,
        expiresAt: event.data.expiresAt,
      };
      const base = {
        kind: 'invitation' as const,
        inviterUsername: event.data.inviterUsername,
        ...(event.data.organization !== undefined ? { organization: event.data.organization } : {}),
        link,
      };
      // An existing user is reached like for any product email; someone new only has the invited address.
      if (event.data.inviteeUserId !== undefined) {
        return [
          toVerifiedPrimary(
            recipient,
            event.data.inviteeUserId,
            (r) => ({ ...base, email: event.data.email, inviteeUsername: r.username }),
            'invitation',
            true,
          ),
        ];
      }
      return [send({ ...base, email: event.data.email }, event.data.email, undefined)];
    }
    case 'CodeMonitorTriggered':
      return [
        toVerifiedPrimary(
          recipient,
          event.userId,
          (r) => ({
            kind: 'code-monitor-triggered',
            username: r.username,
            monitorName: event.data.monitorName,
            query: event.data.query,
            resultCount: event.data.resultCount,
            resultsPath: event.data.resultsPath,
          }),
          'code-monitor-triggered',
          true,
        ),
      ];
    default: {
      const unhandled: never = event;
      throw new Error(`decideNotifications: unhandled event ${(unhandled as { type: string }).type}`);
    }
  }
}
