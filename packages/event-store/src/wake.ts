import type { Database } from '@sitemail/db';

// Relays in the same process as the writer wake as soon as an append commits instead of waiting
// for their next poll. Keyed by schema: a wake for another database with the same schema name
// costs one extra (empty) read, nothing more. Relays in other processes still find events by polling.
const listeners = new Map<string, Set<() => void>>();

const keyOf = (db: Database) => `${db.kind}:${db.schema}`;

export function onAppended(db: Database, listener: () => void): () => void {
  const key = keyOf(db);
  let set = listeners.get(key);
  if (!set) {
    set = new Set();
    listeners.set(key, set);
  }
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0) listeners.delete(key);
  };
}

export function notifyAppended(db: Database): void {
  const set = listeners.get(keyOf(db));
  if (set) for (const listener of set) listener();
}
