import { createHash } from 'node:crypto';
import type { Queryable } from '@sitemail/db';
import type { ReplyScope } from '../smtp/classify.ts';
import {
  classifyDsnRecipient,
  type DeliveryStatusNotification,
  type DsnAction,
  type DsnRecipientReport,
} from '../smtp/dsn.ts';
import { type BounceTarget, findBounceTargets, type NewBounce, recordBounces } from '../store/bounces.ts';

/** What became of one per-recipient report. */
export type ReportEffect =
  /** A failed report: the delivery, accepted earlier, now reads failed 'bounced'. */
  | 'bounced'
  /** Kept in the delivery's bounces, no status change (delayed, delivered, relayed, expanded, or the delivery already failed). */
  | 'recorded'
  /** This report was recorded before: nothing changed. */
  | 'duplicate'
  /** About another recipient of the returned message (not the delivery's address). */
  | 'other-recipient'
  /** No delivery of ours matches the DSN. */
  | 'unmatched';

export interface ReportOutcome {
  finalRecipient: string;
  action: DsnAction;
  status: string | null;
  replyScope: ReplyScope | null;
  reply: string | null;
  effect: ReportEffect;
}

export interface DsnOutcome {
  deliveryId: string | null;
  reports: ReportOutcome[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// The stronger a failed report's scope, the more it says about the delivery (one bounces it).
const SCOPE_RANK: Record<ReplyScope, number> = { address: 3, message: 2, sender: 1, transient: 0 };

/**
 * Applies a parsed DSN (issue 11 item 5) as a final reply at SMTP time would be: matched to the
 * delivery by the envelope id we send (the delivery id), else our X-Sitemail-Delivery header in
 * the returned headers, else the Message-ID; each failed report classified (RFC 3463). Of the
 * reports about the delivery's address (or every report, when none names it: an alias rewrote
 * the recipient), the failed one of the strongest scope fails the delivery 'bounced'; scope
 * 'address' also suppresses the address. The rest are recorded. Idempotent (store/bounces.ts).
 */
export async function applyDsn(
  db: Queryable,
  dsn: DeliveryStatusNotification,
  o: {
    receivedBy: string;
    now: Date;
    onRecorded?: (r: { action: DsnAction; scope: ReplyScope | 'none' }) => void;
  },
): Promise<DsnOutcome> {
  const classified = dsn.recipients.map((r) => {
    const c = r.action === 'failed' ? classifyDsnRecipient(r) : undefined;
    return { r, scope: c?.scope ?? null, reply: c?.reply ?? null, code: c?.code ?? null };
  });
  const target = await matchDelivery(db, dsn);
  if (!target) {
    return {
      deliveryId: null,
      reports: classified.map((c) => outcome(c.r, c.scope, c.reply, 'unmatched')),
    };
  }

  const address = target.recipient_address?.toLowerCase();
  const names = (r: DsnRecipientReport) =>
    address !== undefined &&
    (r.finalRecipient.toLowerCase() === address || r.originalRecipient?.toLowerCase() === address);
  const anyNames = classified.some((c) => names(c.r));
  const about = classified.map((c) => !anyNames || names(c.r));

  let strongest = -1;
  classified.forEach((c, i) => {
    if (!about[i] || c.scope === null) return;
    if (strongest === -1 || SCOPE_RANK[c.scope] > SCOPE_RANK[classified[strongest]!.scope!]) strongest = i;
  });

  const bounces: NewBounce[] = [];
  const keys = new Map<number, string>();
  classified.forEach((c, i) => {
    if (!about[i]) return;
    const key = reportKey(dsn, c.r);
    if ([...keys.values()].includes(key)) return;
    keys.set(i, key);
    bounces.push({
      deliveryId: target.id,
      reportKey: key,
      action: c.r.action,
      status: c.r.status ?? null,
      finalRecipient: c.r.finalRecipient,
      diagnosticCode: c.r.diagnosticCode ?? null,
      remoteMta: c.r.remoteMta ?? null,
      reportingMta: dsn.reportingMta ?? null,
      originalEnvelopeId: dsn.originalEnvelopeId ?? null,
      replyScope: c.scope,
      bounces: i === strongest,
      error: c.reply === null ? null : bouncedText(c.reply, dsn.reportingMta),
      responseCode: c.code,
    });
  });

  const recorded = new Map(
    (await recordBounces(db, bounces, o.receivedBy, o.now)).map((r) => [r.reportKey, r.effect] as const),
  );
  return {
    deliveryId: target.id,
    reports: classified.map((c, i) => {
      if (!about[i]) return outcome(c.r, c.scope, c.reply, 'other-recipient');
      const key = keys.get(i);
      const effect = key === undefined ? undefined : recorded.get(key);
      if (effect === undefined) return outcome(c.r, c.scope, c.reply, 'duplicate');
      o.onRecorded?.({ action: c.r.action, scope: c.scope ?? 'none' });
      return outcome(c.r, c.scope, c.reply, effect);
    }),
  };
}

/** The delivery the DSN is about: by envelope id, then our delivery header, then Message-ID. */
async function matchDelivery(
  db: Queryable,
  dsn: DeliveryStatusNotification,
): Promise<BounceTarget | undefined> {
  const ids = [dsn.originalEnvelopeId, dsn.originalDeliveryHeader].filter(
    (v): v is string => v !== undefined && UUID.test(v),
  );
  const messageIds = dsn.originalMessageId ? [dsn.originalMessageId] : [];
  const found = await findBounceTargets(db, { ids: ids.map((i) => i.toLowerCase()), messageIds });
  for (const id of ids) {
    const t = found.find((f) => f.id === id.toLowerCase());
    if (t) return t;
  }
  return found.find((f) => f.message_id === dsn.originalMessageId);
}

/**
 * The same report is the same digest: its own fields and the per-message ones that tell one
 * report from a later one (a second "delayed" has another Last-Attempt-Date).
 */
function reportKey(dsn: DeliveryStatusNotification, r: DsnRecipientReport): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        dsn.reportingMta ?? null,
        dsn.arrivalDate ?? null,
        r.finalRecipient.toLowerCase(),
        r.action,
        r.status ?? null,
        r.diagnosticCode ?? null,
        r.remoteMta ?? null,
        r.lastAttemptDate ?? null,
        r.willRetryUntil ?? null,
      ]),
    )
    .digest('hex');
}

const bouncedText = (reply: string, reportingMta: string | undefined) =>
  `bounced after acceptance (DSN${reportingMta ? ` from ${reportingMta}` : ''}): ${reply}`;

const outcome = (
  r: DsnRecipientReport,
  scope: ReplyScope | null,
  reply: string | null,
  effect: ReportEffect,
): ReportOutcome => ({
  finalRecipient: r.finalRecipient,
  action: r.action,
  status: r.status ?? null,
  replyScope: scope,
  reply,
  effect,
});
