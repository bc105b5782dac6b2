import type { EmailKind, EmailMessage, SuppressionReason } from './emails.ts';

/** What the policy decides for one email an event causes: send it, suppress it (and why), or wait for its recipient. */
export type Decision =
  | { kind: 'send'; email: EmailKind; to: string; userId: string | undefined; message: EmailMessage }
  | {
      kind: 'suppress';
      email: EmailKind;
      reason: SuppressionReason;
      userId: string | undefined;
      address?: string;
    }
  | {
      /**
       * Not decidable yet: the recipient's own stream (another partition or topic) has not reached
       * notifications. `reason` is what it would be suppressed for if the wait ended now.
       */
      kind: 'await-recipient';
      email: EmailKind;
      reason: RecipientStateReason;
      userId: string;
      address?: string;
    };

/** Suppression reasons about the recipient as notifications knows it: they may change as its stream catches up. */
export const recipientStateReasons = [
  'unknown-recipient',
  'no-primary-address',
  'primary-unverified',
] as const;
export type RecipientStateReason = (typeof recipientStateReasons)[number];
export const isRecipientStateReason = (r: SuppressionReason): r is RecipientStateReason =>
  (recipientStateReasons as readonly SuppressionReason[]).includes(r);

export const send = (message: EmailMessage, to: string, userId: string | undefined): Decision => ({
  kind: 'send',
  email: message.kind,
  to,
  userId,
  message,
});

export const suppress = (
  email: EmailKind,
  reason: SuppressionReason,
  userId: string | undefined,
  address?: string,
): Decision => ({ kind: 'suppress', email, reason, userId, ...(address !== undefined ? { address } : {}) });
