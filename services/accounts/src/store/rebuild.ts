import type { LinkTokenKey } from '@sitemail/contracts';
import type { Database } from '@sitemail/db';
import { createEventStore } from '@sitemail/event-store';
import { withPersonalData } from './personal-data.ts';
import { createProjection } from './projection.ts';

/**
 * The read models accounts derives from its event log, each as a query whose rows a rebuild must
 * reproduce. `link_tokens` leaves out `used_at`/`revoked_at`: a replay re-creates a token from its
 * request event, and its use is projected by later events of the same stream.
 */
export const readModelQueries = {
  users: 'SELECT * FROM users ORDER BY id',
  user_emails: 'SELECT * FROM user_emails ORDER BY email',
  api_keys: 'SELECT * FROM api_keys ORDER BY id',
  invitations: 'SELECT * FROM invitations ORDER BY id',
  link_tokens:
    'SELECT token_sha256, kind, user_id, email, invitation_id, created_at, expires_at FROM link_tokens ORDER BY 1',
} as const;

/**
 * Replays `source`'s event log, in commit order and read as the service reads it (personal fields
 * opened with each user's data key; a deleted user's shredded events fold into deleted), into the
 * empty read models of `target` (prepared with `prepareAccountsDatabase`). One transaction: a
 * rebuild that fails leaves `target` as it was.
 */
export async function rebuildReadModels(
  source: Database,
  target: Database,
  linkTokenKey: LinkTokenKey,
): Promise<{ events: number }> {
  const store = withPersonalData(source, createEventStore(source));
  const project = createProjection(linkTokenKey);
  const { rows: order } = await source.query<{ stream_id: string; event_id: string }>(
    'SELECT stream_id, event_id FROM events ORDER BY seq',
  );
  const streams = [...new Set(order.map((o) => o.stream_id))];
  const all = (await Promise.all(streams.map((s) => store.readStream(s)))).flat();
  const byId = new Map(all.map((e) => [e.id, e]));
  await target.transaction(async (tx) => {
    for (const { event_id } of order) {
      const event = byId.get(event_id);
      if (!event) throw new Error(`event ${event_id} is in the log but not in its stream`);
      await project(tx, [event]);
    }
  });
  return { events: order.length };
}
