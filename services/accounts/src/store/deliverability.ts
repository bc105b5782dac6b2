import type { AddressEvent } from '@sitemail/contracts';
import type { Queryable } from '@sitemail/db';

/** An address a final reply said has no mailbox, as the user's addresses show it. */
export interface Undeliverable {
  status: 'undeliverable';
  since: string;
  cause: 'smtp-reply' | 'dsn';
  reply: { code: number | null; enhancedStatus: string | null; text: string };
}

interface Row {
  email: string;
  since: Date | string;
  cause: 'smtp-reply' | 'dsn';
  reply_code: number | null;
  enhanced_status: string | null;
  reply_text: string;
}

/**
 * Applies one address event (notifications.address-events.v1) to `address_deliverability`: the
 * newest position per address wins, so a redelivered or older event changes nothing. Returns
 * whether it changed the row.
 */
export async function applyAddressEvent(q: Queryable, event: AddressEvent): Promise<boolean> {
  const undeliverable = event.type === 'EmailAddressUndeliverable' ? event.data : undefined;
  const { rows } = await q.query(
    `INSERT INTO address_deliverability (email, status, since, cause, reply_code, enhanced_status, reply_text,
       delivery_id, position, event_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (email) DO UPDATE SET status = excluded.status, since = excluded.since, cause = excluded.cause,
       reply_code = excluded.reply_code, enhanced_status = excluded.enhanced_status,
       reply_text = excluded.reply_text, delivery_id = excluded.delivery_id, position = excluded.position,
       event_id = excluded.event_id
     WHERE address_deliverability.position < excluded.position
     RETURNING email`,
    [
      event.address.toLowerCase(),
      undeliverable ? 'undeliverable' : 'deliverable',
      event.time,
      event.data.cause,
      undeliverable?.reply.code ?? null,
      undeliverable?.reply.enhancedStatus ?? null,
      undeliverable?.reply.text ?? null,
      undeliverable ? undeliverable.deliveryId : null,
      event.position,
      event.id,
    ],
  );
  return rows.length > 0;
}

/** Which of these addresses are undeliverable now, and why. */
export async function undeliverableAmong(
  q: Queryable,
  emails: string[],
): Promise<Map<string, Undeliverable>> {
  if (emails.length === 0) return new Map();
  const { rows } = await q.query<Row>(
    `SELECT email, since, cause, reply_code, enhanced_status, reply_text FROM address_deliverability
     WHERE email = ANY($1::text[]) AND status = 'undeliverable'`,
    [emails],
  );
  return new Map(rows.map((r) => [r.email, undeliverableFrom(r)]));
}

/** An `address_deliverability` row of an undeliverable address, as the user's addresses show it. */
export function undeliverableFrom(r: Omit<Row, 'email'>): Undeliverable {
  return {
    status: 'undeliverable',
    since: new Date(r.since).toISOString(),
    cause: r.cause,
    reply: { code: r.reply_code, enhancedStatus: r.enhanced_status, text: r.reply_text },
  };
}
