import type { OutgoingMessage, Publisher } from '@sitemail/bus';
import type { Database } from '@sitemail/db';
import type { StoredEvent } from '@sitemail/event-store';
import { isShredded, openPersonalData, readDataKeys } from './personal-data.ts';

/**
 * The publisher the outbox relay of accounts writes through. The relay reads events as stored
 * (personal fields sealed, see personal-data.ts) and builds each message synchronously; this opens
 * the sealed fields of a batch (one key lookup per batch) just before it goes to Kafka, so the
 * topic carries the contract's plaintext events and the database keeps no plaintext copy: the
 * outbox is the event log itself (packages/event-store), not a second table of payloads.
 *
 * An event whose user was deleted before it was published cannot be opened any more: it is left
 * out (its `UserDeleted`, which holds nothing personal, still goes), so consumers never receive
 * what was already erased. A blob that fails to open under an existing key throws, and the relay
 * retries and reports it rather than publish a corrupt event.
 */
export function openingPublisher(db: Database, publisher: Publisher): Publisher {
  return {
    async publish(topic, messages) {
      const bodies = messages.map((m) => JSON.parse(String(m.value)) as Record<string, unknown>);
      const sealed = bodies.filter((b) => isSealed(b.data));
      const keys = await readDataKeys(db, [...new Set(sealed.map((b) => String(b.userId)))]);
      const out: OutgoingMessage[] = [];
      for (const [i, message] of messages.entries()) {
        const body = bodies[i] as Record<string, unknown>;
        if (!isSealed(body.data)) {
          out.push(message);
          continue;
        }
        const opened = openPersonalData(asStored(body), keys.get(String(body.userId)) ?? null);
        if (!isShredded(opened))
          out.push({ ...message, value: JSON.stringify({ ...body, data: opened.data }) });
      }
      if (out.length > 0) await publisher.publish(topic, out);
    },
    close: () => publisher.close(),
  };
}

const isSealed = (data: unknown) => typeof data === 'object' && data !== null && '$personal' in data;

const asStored = (body: Record<string, unknown>): StoredEvent => ({
  id: String(body.id),
  streamId: String(body.userId),
  position: Number(body.position),
  type: String(body.type),
  data: body.data,
  time: String(body.time),
  schemaVersion: Number(body.schemaVersion),
});
