import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { AccountsEventType } from '@sitemail/contracts';
import type { Database, Queryable } from '@sitemail/db';
import type { AppendOptions, EventStore, NewEvent, StoredEvent } from '@sitemail/event-store';

/**
 * Crypto-shredding of the user streams. The personal fields of each event (below) are stored
 * encrypted with AES-256-GCM under a per-user data key kept in `user_data_keys`, outside the event
 * log; deleting the user deletes the key in the transaction that appends `UserDeleted`, so the
 * events stay (positions and versions intact) but their personal fields can never be read again.
 *
 * Format, per event: the personal fields leave `data` and travel in one `$personal` member,
 * `{ v: 1, iv, ct, tag }` (base64url; the additional data binds stream, event id and type, so a
 * blob cannot be moved to another event). An event without `$personal` is plaintext as written
 * before this existed and reads as it is: no migration of old data. `{ v: 1, erased: true }` marks
 * the personal fields of such an old event erased when its user was deleted.
 *
 * The data keys are not wrapped with a master key: the read models beside them in the same
 * database hold the same addresses in clear while the user exists, so wrapping would protect
 * nothing more against someone holding the database, and losing or rotating a master key would
 * shred every user at once. The keys exist to be destroyed. Backups keep a deleted user's key
 * until they expire (services/accounts/README.md, "Data lifecycle").
 */

/** Personal fields of each event type, as paths into `data`. A type not listed holds none. */
export const personalFields: Partial<Record<AccountsEventType, readonly string[]>> = {
  UserCreated: ['username', 'displayName', 'email', 'authProvider.externalId'],
  EmailAdded: ['email'],
  EmailVerificationRequested: ['email'],
  EmailVerified: ['email'],
  EmailUnverified: ['email'],
  EmailRemoved: ['email'],
  PrimaryEmailChanged: ['email', 'previousEmail'],
  PasswordSetLinkRequested: ['email'],
  PasswordResetRequested: ['email'],
  ApiKeyCreated: ['name'],
  // The invited address is somebody else's, kept under the inviter's key: it goes with the inviter.
  UserInvited: ['email', 'inviterUsername', 'organization'],
};

const MARK = '$personal';
type Data = Record<string, unknown>;
type Sealed = { v: 1; iv: string; ct: string; tag: string } | { v: 1; erased: true };

/** A stored event as accounts reads it: personal fields back in place, or `shredded` when they cannot be. */
export type PersonalEvent = StoredEvent & { shredded?: true };
export const isShredded = (e: StoredEvent): boolean => (e as PersonalEvent).shredded === true;

const pathsOf = (type: string) => personalFields[type as AccountsEventType] ?? [];
const aad = (streamId: string, eventId: string, type: string) =>
  Buffer.from(`${streamId}\n${eventId}\n${type}`, 'utf8');

function take(data: Data, paths: readonly string[]): { rest: Data; taken: Record<string, unknown> } {
  const rest: Data = structuredClone(data);
  const taken: Record<string, unknown> = {};
  for (const path of paths) {
    const parts = path.split('.');
    const leaf = parts.pop() as string;
    let node: unknown = rest;
    for (const p of parts) node = (node as Data | undefined)?.[p];
    if (node && typeof node === 'object' && leaf in (node as Data)) {
      taken[path] = (node as Data)[leaf];
      delete (node as Data)[leaf];
    }
  }
  return { rest, taken };
}

function putBack(rest: Data, taken: Record<string, unknown>): Data {
  const data: Data = structuredClone(rest);
  for (const [path, value] of Object.entries(taken)) {
    const parts = path.split('.');
    const leaf = parts.pop() as string;
    let node = data;
    for (const p of parts) {
      node[p] ??= {};
      node = node[p] as Data;
    }
    node[leaf] = value;
  }
  return data;
}

/** The event's data with its personal fields sealed under `key` (unchanged when it has none). */
export function sealPersonalData(
  streamId: string,
  eventId: string,
  type: string,
  data: unknown,
  key: Buffer,
) {
  const { rest, taken } = take(data as Data, pathsOf(type));
  if (Object.keys(taken).length === 0) return data;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad(streamId, eventId, type));
  const ct = Buffer.concat([cipher.update(JSON.stringify(taken), 'utf8'), cipher.final()]);
  const sealed: Sealed = {
    v: 1,
    iv: iv.toString('base64url'),
    ct: ct.toString('base64url'),
    tag: cipher.getAuthTag().toString('base64url'),
  };
  return { ...rest, [MARK]: sealed };
}

/**
 * The event as accounts reads it: plaintext events as they are, sealed ones opened with `key`, or
 * without their personal fields and `shredded` when the key is gone. A blob that does not open
 * under the key it should (tampered, or moved) throws: that is corruption, never "deleted".
 */
export function openPersonalData(stored: StoredEvent, key: Buffer | null): PersonalEvent {
  const data = stored.data as Data | null;
  if (!data || typeof data !== 'object' || !(MARK in data)) return stored;
  const { [MARK]: sealed, ...rest } = data as Data & { [MARK]: Sealed };
  if (!key || 'erased' in sealed) return { ...stored, data: rest, shredded: true };
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'))
    .setAAD(aad(stored.streamId, stored.id, stored.type))
    .setAuthTag(Buffer.from(sealed.tag, 'base64url'));
  const plain = Buffer.concat([decipher.update(Buffer.from(sealed.ct, 'base64url')), decipher.final()]);
  return { ...stored, data: putBack(rest, JSON.parse(plain.toString('utf8'))) };
}

/** The user's data key, or null: none made yet (an old user, all plaintext) or destroyed (deleted). */
export async function readDataKey(db: Queryable, userId: string): Promise<Buffer | null> {
  const { rows } = await db.query<{ data_key: string }>(
    'SELECT data_key FROM user_data_keys WHERE user_id = $1',
    [userId],
  );
  return rows[0] ? Buffer.from(rows[0].data_key, 'base64') : null;
}

/** Keys of several users at once (the relay's batches), by user id. */
export async function readDataKeys(db: Queryable, userIds: string[]): Promise<Map<string, Buffer>> {
  if (userIds.length === 0) return new Map();
  const { rows } = await db.query<{ user_id: string; data_key: string }>(
    `SELECT user_id, data_key FROM user_data_keys WHERE user_id IN (${userIds.map((_, i) => `$${i + 1}`).join(', ')})`,
    userIds,
  );
  return new Map(rows.map((r) => [r.user_id, Buffer.from(r.data_key, 'base64')]));
}

/**
 * Destroys the user's data key and erases the personal fields of their events written before
 * encryption existed (plaintext), in the caller's transaction: after it, nothing of the stream's
 * personal data can be read. The events themselves, their positions and types stay.
 */
export async function shredStream(tx: Queryable, streamId: string): Promise<void> {
  await tx.query('DELETE FROM user_data_keys WHERE user_id = $1', [streamId]);
  const { rows } = await tx.query<{ seq: string; type: string; data: Data }>(
    `SELECT seq::text AS seq, type, data FROM events WHERE stream_id = $1 AND NOT (data ? '${MARK}')`,
    [streamId],
  );
  for (const row of rows) {
    const { rest, taken } = take(row.data, pathsOf(row.type));
    if (Object.keys(taken).length === 0) continue;
    const erased: Sealed = { v: 1, erased: true };
    await tx.query('UPDATE events SET data = $2 WHERE seq = $1::bigint', [
      row.seq,
      JSON.stringify({ ...rest, [MARK]: erased }),
    ]);
  }
}

const wrapped = Symbol('personal-data');

/**
 * The event store as accounts uses it: appends seal personal fields under the stream's data key
 * (made, in the append's transaction, with the stream's first personal field), reads open them,
 * and an append of `UserDeleted` shreds the stream in its transaction. The projection and the
 * caller see plaintext. Wrapping twice is wrapping once.
 */
export function withPersonalData(db: Database, store: EventStore): EventStore {
  if ((store as { [wrapped]?: true })[wrapped]) return store;
  const shredding: EventStore & { [wrapped]: true } = {
    [wrapped]: true,
    async readStream(streamId, options) {
      const events = await store.readStream(streamId, options);
      const key = events.length > 0 ? await readDataKey(db, streamId) : null;
      return events.map((e) => openPersonalData(e, key));
    },
    async append(streamId, expectedVersion, events: NewEvent[], options: AppendOptions = {}) {
      // A key is made only with a stream's events: a stream at version 0 has none to read. (Should
      // it have events after all, the append's version check refuses before the new key is written.)
      let key = expectedVersion === 0 ? null : await readDataKey(db, streamId);
      const newKey = !key && events.some((e) => pathsOf(e.type).length > 0) ? randomBytes(32) : null;
      key ??= newKey;
      const sealed = events.map((e) => {
        const id = e.id ?? randomUUID();
        return { ...e, id, data: key ? sealPersonalData(streamId, id, e.type, e.data, key) : e.data };
      });
      const open = (stored: StoredEvent[]) => stored.map((e) => openPersonalData(e, key));
      const stored = await store.append(streamId, expectedVersion, sealed, {
        ...options,
        project: async (tx, written) => {
          // Inside the append's transaction and after the version check: only one writer of the stream gets here.
          if (newKey) {
            await tx.query('INSERT INTO user_data_keys (user_id, data_key, created_at) VALUES ($1, $2, $3)', [
              streamId,
              newKey.toString('base64'),
              written[0]?.time ?? new Date().toISOString(),
            ]);
          }
          await options.project?.(tx, open(written));
          if (written.some((e) => e.type === 'UserDeleted')) await shredStream(tx, streamId);
        },
      });
      return open(stored);
    },
  };
  return shredding;
}
