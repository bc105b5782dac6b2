import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type AccountsEvent, apiKeySecretSha256, type FleetEvent } from '@sitemail/contracts';
import { type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import { codeMonitorTriggered, Stream } from '../../test/events.ts';
import { notificationsDb, siteFor } from '../../test/harness.ts';
import { findApiKeyOwner, loadRecipient } from '../store/recipients.ts';
import { handleEvent, handleEvents } from './handle-event.ts';

const site = siteFor({ host: '127.0.0.1', port: 2525 });
const count = async (db: TestDatabase, table: string) =>
  Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n);

describe(`handling an event: projection, decisions and deliveries in one transaction (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  before(async () => {
    db = await notificationsDb('handle');
  });
  after(async () => {
    await db?.close();
  });

  it('a redelivered event creates nothing new, even when both copies are handled at once', async () => {
    const s = new Stream();
    await handleEvent(db, s.created({ email: 'a@example.com', verified: true }), site, new Date());
    const key = s.apiKeyCreated();
    const results = await Promise.all([1, 2, 3].map(() => handleEvent(db, key, site, new Date())));
    assert.deepEqual(results.map((r) => r.duplicate).sort(), [false, true, true]);
    const again = await handleEvent(db, key, site, new Date());
    assert.equal(again.duplicate, true);
    const { rows } = await db.query('SELECT id FROM deliveries WHERE event_id = $1', [key.id]);
    assert.equal(rows.length, 1);
  });

  it('refuses a second delivery for the same event decision at the database, not only in code', async () => {
    const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM deliveries LIMIT 1');
    const d = rows[0]!;
    await assert.rejects(
      db.query(
        `INSERT INTO deliveries (id, event_id, event_type, decision_index, email_kind, recipient_address, status, message,
           message_id, created_at, updated_at)
         VALUES (gen_random_uuid(), $1, $2, $3, $4, $5, 'queued', '{}', 'other', now(), now())`,
        [d.event_id, d.event_type, d.decision_index, d.email_kind, d.recipient_address],
      ),
      /duplicate key|unique/,
    );
    await assert.rejects(
      db.query(
        `INSERT INTO processed_events (event_id, event_type, user_id, position, decisions) VALUES ($1, 'X', $2, 1, '[]')`,
        [d.event_id, d.user_id],
      ),
      /duplicate key|unique/,
    );
  });

  it('keeps suppressed decisions as deliveries with their reason, and no message', async () => {
    const s = new Stream();
    await handleEvent(db, s.created({ email: 'u@example.com', verified: false }), site, new Date());
    const handled = await handleEvent(db, s.apiKeyCreated(), site, new Date());
    assert.equal(handled.queued, 0);
    const { rows } = await db.query<{
      status: string;
      suppression_reason: string;
      message: unknown;
      recipient_address: string;
    }>('SELECT status, suppression_reason, message, recipient_address FROM deliveries WHERE id = $1', [
      handled.deliveryIds[0],
    ]);
    assert.deepEqual(rows[0], {
      status: 'suppressed',
      suppression_reason: 'primary-unverified',
      message: null,
      recipient_address: 'u@example.com',
    });
  });

  it('never stores a link token in clear: the delivery holds it sealed', async () => {
    const s = new Stream();
    await handleEvent(db, s.created({ email: 'v@example.com', verified: false }), site, new Date());
    await handleEvent(
      db,
      s.verificationRequested('v@example.com', 'plain-token-must-not-be-stored'),
      site,
      new Date(),
    );
    const { rows } = await db.query<{ dump: string }>(
      `SELECT (SELECT coalesce(string_agg(row_to_json(d)::text, ''), '') FROM deliveries d) ||
              (SELECT coalesce(string_agg(row_to_json(p)::text, ''), '') FROM processed_events p) ||
              (SELECT coalesce(string_agg(row_to_json(r)::text, ''), '') FROM recipients r) AS dump`,
    );
    assert.doesNotMatch(rows[0]!.dump, /plain-token-must-not-be-stored/);
    assert.match(rows[0]!.dump, /A256GCM/);
  });

  it('projects API keys for admin authentication and forgets revoked ones; replaying changes nothing', async () => {
    const s = new Stream();
    const events: AccountsEvent[] = [
      s.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
      s.apiKeyCreated('k1', apiKeySecretSha256('secret-1')),
    ];
    const second = s.apiKeyCreated('k2', apiKeySecretSha256('secret-2'));
    events.push(second, s.next('ApiKeyRevoked', { keyId: second.data.keyId, revokedBy: s.userId }));
    for (const e of events) await handleEvent(db, e, site, new Date());
    assert.deepEqual(await findApiKeyOwner(db, apiKeySecretSha256('secret-1')), {
      userId: s.userId,
      username: 'root',
      siteAdmin: true,
    });
    assert.equal(await findApiKeyOwner(db, apiKeySecretSha256('secret-2')), undefined);
    const before = await loadRecipient(db, s.userId);
    const deliveries = await count(db, 'deliveries');
    for (const e of events) await handleEvent(db, e, site, new Date());
    assert.deepEqual(await loadRecipient(db, s.userId), before);
    assert.equal(await count(db, 'deliveries'), deliveries);
  });

  it('rebuilds an emptied projection from a replay without creating deliveries', async () => {
    const s = new Stream();
    const events = [
      s.created({ email: 'r@example.com', verified: false }),
      s.verificationRequested('r@example.com'),
      s.verified('r@example.com'),
      s.apiKeyCreated('k', apiKeySecretSha256('secret-r')),
    ];
    for (const e of events) await handleEvent(db, e, site, new Date());
    const before = await loadRecipient(db, s.userId);
    const deliveries = await count(db, 'deliveries');
    await db.query('DELETE FROM recipients WHERE user_id = $1', [s.userId]);
    assert.equal(await findApiKeyOwner(db, apiKeySecretSha256('secret-r')), undefined);
    for (const e of events) await handleEvent(db, e, site, new Date());
    assert.deepEqual(await loadRecipient(db, s.userId), before);
    assert.equal((await findApiKeyOwner(db, apiKeySecretSha256('secret-r')))?.userId, s.userId);
    assert.equal(await count(db, 'deliveries'), deliveries);
  });

  it('handles a batch in one transaction exactly as its events one after the other', async () => {
    // Every step that reads back what the batch wrote: an invitation waits for its invitee, whose
    // UserCreated in the same batch releases it; a redelivered copy within the batch; a user
    // created, emailed and deleted in one batch (the erasure sees the batch's own deliveries).
    const scenario = () => {
      const inviter = new Stream();
      const invitee = new Stream();
      const gone = new Stream();
      const created = inviter.created({
        email: 'alice@example.com',
        verified: true,
        username: 'alice',
        siteAdmin: true,
      });
      const invitation = inviter.next('UserInvited', {
        invitationId: randomUUID(),
        email: 'bob@work.example',
        inviterUsername: 'alice',
        organization: 'acme',
        inviteeUserId: invitee.userId,
        token: inviter.seal('invite-1', 'UserInvited'),
        expiresAt: new Date(Date.now() + 7 * 86_400_000).toISOString(),
      });
      const key = inviter.apiKeyCreated('k', apiKeySecretSha256(`secret-${randomUUID()}`));
      const events: FleetEvent[] = [
        created,
        codeMonitorTriggered(invitee.userId, 'Leaked secrets'),
        invitation,
        invitee.created({ email: 'bob@example.com', verified: true, username: 'bob' }),
        key,
        key,
        gone.created({ email: 'carol@example.com', verified: false, username: 'carol' }),
        gone.verificationRequested('carol@example.com'),
        gone.next('UserDeleted', { deletedBy: 'self' }),
      ];
      return { events, users: [inviter.userId, invitee.userId, gone.userId], key };
    };
    const outcome = async (users: string[]) => {
      const { rows } = await db.query<Record<string, unknown>>(
        `SELECT user_id, email_kind, status, suppression_reason, recipient_address, message IS NULL AS no_message
         FROM deliveries WHERE user_id = ANY($1::uuid[]) ORDER BY seq`,
        [users],
      );
      const recipients = await db.query<{ user_id: string; state: { position: number; deleted?: true } }>(
        'SELECT user_id, state FROM recipients WHERE user_id = ANY($1::uuid[])',
        [users],
      );
      return {
        deliveries: rows.map((r) => ({ ...r, user_id: users.indexOf(String(r.user_id)) })),
        recipients: recipients.rows
          .map((r) => [users.indexOf(r.user_id), r.state.position, r.state.deleted ?? false])
          .sort(),
      };
    };

    const alone = scenario();
    const one = [];
    for (const e of alone.events) one.push(await handleEvent(db, e, site, new Date()));
    const batched = scenario();
    const all = await handleEvents(db, batched.events, site, new Date());

    const expected = await outcome(alone.users);
    assert.deepEqual(await outcome(batched.users), expected);
    assert.equal(expected.deliveries.length, 4, JSON.stringify(expected));
    assert.deepEqual(
      all.map((h) => [h.duplicate, h.queued, h.released, h.deliveryIds.length]),
      one.map((h) => [h.duplicate, h.queued, h.released, h.deliveryIds.length]),
    );
    assert.equal(all[5]!.duplicate, true, 'the copy in the same batch');
    assert.equal(all[3]!.released, 2, 'the invitee releases what waited for it');
    assert.equal((await findApiKeyOwner(db, batched.key.data.secretSha256))?.username, 'alice');
    // Handled again (the bus redelivers a batch whose commit it did not see): nothing new.
    const again = await handleEvents(db, batched.events, site, new Date());
    assert.ok(again.every((h) => h.duplicate && h.deliveryIds.length === 0));
    assert.deepEqual(await outcome(batched.users), expected);
  });
});
