import type { FleetEvent } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { type Decision, isRecipientStateReason, suppress } from './decision.ts';
import { decideNotifications, type UndeliverableAddresses, type UnsubscribedKinds } from './policy.ts';
import type { Recipient } from './recipient.ts';

/**
 * Decides again a delivery that awaits its recipient, with the recipient as it stands now. Sent
 * as soon as the policy allows; while `waitOver` is false a reason about the recipient's state
 * (unknown, no primary, primary unverified) keeps it waiting, since the recipient's stream may
 * still be catching up (a user created and verified before the event was emitted); a config
 * reason is final at once, as for any event. Once the wait is over it ends with the reason the
 * policy gives then. Pure: the caller says whether the wait is over, which kinds the
 * recipient unsubscribed from, and which addresses are on the suppression list (decided first
 * without it, the caller looks the address a send would go to up, as `handleEvent` does).
 */
export function redecideAwaiting(
  event: FleetEvent,
  decisionIndex: number,
  recipient: Recipient | undefined,
  site: SiteConfig,
  waitOver: boolean,
  unsubscribed: UnsubscribedKinds = new Set(),
  undeliverable: UndeliverableAddresses = new Set(),
): Decision {
  // the user may have unsubscribed, or the address been listed, while the email waited (both final)
  const decision = decideNotifications(event, recipient, site, undeliverable, unsubscribed)[decisionIndex];
  if (!decision) {
    // Only reachable if the policy stopped deciding this email for the event; nothing to wait for.
    throw new Error(`redecideAwaiting: ${event.type} no longer decides email ${decisionIndex}`);
  }
  switch (decision.kind) {
    case 'send':
      return decision;
    case 'await-recipient':
      return waitOver
        ? suppress(decision.email, decision.reason, decision.userId, decision.address)
        : decision;
    case 'suppress':
      if (waitOver || !isRecipientStateReason(decision.reason) || decision.userId === undefined) {
        return decision;
      }
      return {
        kind: 'await-recipient',
        email: decision.email,
        reason: decision.reason,
        userId: decision.userId,
        ...(decision.address !== undefined ? { address: decision.address } : {}),
      };
    default: {
      const unhandled: never = decision;
      throw new Error(`redecideAwaiting: unhandled decision ${(unhandled as { kind: string }).kind}`);
    }
  }
}
