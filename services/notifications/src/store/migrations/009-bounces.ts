import type { Migration } from '@sitemail/db';

/**
 * Bounces that arrive later (issue 11 item 5): each per-recipient report of a delivery status
 * notification (RFC 3464) matched to a delivery, as it came and what it did. `report_key` is a
 * digest of the report's own fields, so the same DSN posted twice is one row and does nothing the
 * second time. A delivery a DSN says failed stays in 'failed' with failure_reason 'bounced' (it
 * was accepted, then bounced); delayed, delivered, relayed and expanded reports are only recorded.
 * Rows go with their delivery (retention); erasure deletes them, since they quote the address.
 */
export const bouncesMigration: Migration = {
  id: '009-bounces',
  sql: `
CREATE TABLE delivery_bounces (
  delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
  report_key text NOT NULL,
  action text NOT NULL CHECK (action IN ('failed', 'delayed', 'delivered', 'relayed', 'expanded')),
  status text,
  final_recipient text,
  diagnostic_code text,
  remote_mta text,
  reporting_mta text,
  original_envelope_id text,
  reply_scope text CHECK (reply_scope IN ('address', 'message', 'sender', 'transient')),
  effect text NOT NULL CHECK (effect IN ('bounced', 'recorded')),
  received_at timestamptz NOT NULL,
  received_by text NOT NULL,
  PRIMARY KEY (delivery_id, report_key)
);
`,
};
