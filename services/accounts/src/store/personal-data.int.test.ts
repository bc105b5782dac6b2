import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type DecodedMessage, inProcessBus, MalformedMessageError } from '@sitemail/bus';
import { type AccountsEvent, decodeEvent, topics } from '@sitemail/contracts';
import { createEventStore, createOutboxRelay } from '@sitemail/event-store';
import { testDatabaseKind } from '@sitemail/testkit';
import { toAccountsMessage } from '../messages.ts';
import { type Harness, noSmtpSite, startHarness, userWithKey } from '../testing/harness.ts';
import { everyRow } from '../testing/scan.ts';
import { isShredded } from './personal-data.ts';
import { createProjection } from './projection.ts';
import { openingPublisher } from './published-events.ts';

const holding = (rows: string[], needles: string[]) => rows.filter((r) => needles.some((n) => r.includes(n)));

describe(`personal data at rest and on the way out (${testDatabaseKind()})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: noSmtpSite });
    admin = await userWithKey(h, 'admin');
  });
  after(() => h.close());

  it('events written before encryption read as they are, and are erased when their user is deleted', async () => {
    // A user as an older accounts wrote it: plaintext events, no data key.
    const id = randomUUID();
    await createEventStore(h.db).append(
      id,
      0,
      [
        {
          type: 'UserCreated',
          data: {
            username: 'oldtimer',
            email: 'oldtimer@example.com',
            emailVerified: true,
            origin: 'api',
            authProvider: { type: 'builtin' },
            siteAdmin: false,
          },
        },
        { type: 'EmailAdded', data: { email: 'oldtimer@second.example' } },
      ],
      { project: createProjection(h.linkTokenKey) },
    );
    const old = await h.eventStore.readStream(id);
    assert.deepEqual(old[1]?.data, { email: 'oldtimer@second.example' });
    assert.ok(!old.some(isShredded));
    // A new event on that user gets a key and is sealed; the old ones stay plaintext until deletion.
    const added = await h.app.inject({
      method: 'POST',
      url: `/users/${id}/emails`,
      headers: admin.auth,
      payload: { email: 'oldtimer@third.example' },
    });
    assert.equal(added.statusCode, 201, added.body);
    const { rows: keys } = await h.db.query('SELECT 1 FROM user_data_keys WHERE user_id = $1', [id]);
    assert.equal(keys.length, 1);

    const res = await h.app.inject({ method: 'DELETE', url: `/users/${id}`, headers: admin.auth });
    assert.equal(res.statusCode, 204, res.body);
    assert.deepEqual(holding(await everyRow(h.db), ['oldtimer']), []);
    const after = await h.eventStore.readStream(id);
    assert.deepEqual(
      after.map((e) => [e.position, e.type, isShredded(e)]),
      [
        [1, 'UserCreated', true],
        [2, 'EmailAdded', true],
        [3, 'EmailAdded', true],
        [4, 'UserDeleted', false],
      ],
    );
  });

  it('a sealed blob that does not open under its key is corruption, not a deletion', async () => {
    const user = await userWithKey(h, 'tampered');
    const { rows } = await h.db.query<{ seq: string }>(
      'SELECT seq::text AS seq FROM events WHERE stream_id = $1 ORDER BY seq LIMIT 1',
      [user.id],
    );
    await h.db.query(
      `UPDATE events SET data = jsonb_set(data, '{$personal,tag}', '"AAAAAAAAAAAAAAAAAAAAAA"') WHERE seq = $1::bigint`,
      [rows[0]?.seq],
    );
    await assert.rejects(h.eventStore.readStream(user.id), /unable to authenticate|auth/i);
    await h.db.query('DELETE FROM events WHERE stream_id = $1', [user.id]);
    await h.db.query('DELETE FROM streams WHERE stream_id = $1', [user.id]);
  });

  it('the relay publishes plaintext contract events, and nothing of a user deleted before publication', async () => {
    const kept = await userWithKey(h, 'kept');
    const gone = await userWithKey(h, 'gone');
    const del = await h.app.inject({ method: 'DELETE', url: `/users/${gone.id}`, headers: admin.auth });
    assert.equal(del.statusCode, 204, del.body);

    const bus = inProcessBus();
    const relay = createOutboxRelay({
      db: h.db,
      publisher: openingPublisher(h.db, await bus.publisher()),
      topic: topics.accountsEvents,
      toMessage: toAccountsMessage,
      name: 'personal-data-test',
      onError: (err) => assert.fail(err as Error),
    });
    relay.start();
    await relay.waitUntilIdle();
    await relay.stop();
    const received: AccountsEvent[] = [];
    const consumer = bus.consumer<AccountsEvent>({
      groupId: 'personal-data-test',
      topics: [topics.accountsEvents],
      fromBeginning: true,
      deadLetterTopic: topics.notificationsDeadLetter,
      decode: (m) => {
        const d = decodeEvent(m.value);
        if (!d.ok) throw new MalformedMessageError(JSON.stringify(d.problems), d.problems);
        return d.event as AccountsEvent;
      },
      handleBatch: async (batch: DecodedMessage<AccountsEvent>[]) => {
        received.push(...batch.map((b) => b.value));
      },
    });
    await consumer.start();
    // What may go out: every event but those that can no longer be opened (users deleted meanwhile).
    const { rows } = await h.db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM events e WHERE NOT (e.data ? '$personal')
         OR EXISTS (SELECT 1 FROM user_data_keys k WHERE k.user_id = e.stream_id)`,
    );
    for (let i = 0; i < 200 && received.length < Number(rows[0]?.n); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await consumer.stop();
    await bus.close();

    const keptCreated = received.find((e) => e.userId === kept.id && e.type === 'UserCreated');
    assert.equal(keptCreated?.type === 'UserCreated' && keptCreated.data.email, 'kept@example.com');
    assert.deepEqual(
      received.filter((e) => e.userId === gone.id).map((e) => [e.type, e.data]),
      [['UserDeleted', { deletedBy: 'site-admin' }]],
    );
    assert.deepEqual(holding(JSON.stringify(received).split('\n'), ['gone@example.com', '$personal']), []);
    assert.equal(received.length, Number(rows[0]?.n));
  });
});
