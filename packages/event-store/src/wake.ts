import { type Database, notify, type Queryable, type Unlisten } from '@sitemail/db';

/**
 * Relays wake as soon as an append commits, in any process: the append's transaction notifies the
 * schema's `events` channel (Postgres NOTIFY, or PGlite's in-process one), delivered on commit
 * only. The relay keeps polling (`pollIntervalMs`) as the safety net for a notification missed
 * while its LISTEN connection was down, and the database calls it once when LISTEN is back.
 */
const CHANNEL = 'events';

export function onAppended(db: Database, listener: () => void): Unlisten {
  return db.listen(CHANNEL, listener);
}

/** Run inside the appending transaction: the wake goes out with its commit, never before. */
export function notifyAppended(tx: Queryable): Promise<void> {
  return notify(tx, CHANNEL);
}
