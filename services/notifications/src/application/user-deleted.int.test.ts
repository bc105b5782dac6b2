import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { notificationsDb, siteFor } from '../../test/harness.ts';
import { notificationsApp } from '../app.ts';
import { loadRecipient } from '../store/recipients.ts';
import { handleEvent } from './handle-event.ts';

/** Every row of every table of the service's schema, as text: what an erasure audit would grep. */
async function allText(db: TestDatabase): Promise<Map<string, string[]>> {
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`,
  );
  const out = new Map<string, string[]>();
  for (const { table_name } of tables) {
    const { rows } = await db.query<{ t: string }>(`SELECT t::text AS t FROM "${table_name}" t`);
    out.set(
      table_name,
      rows.map((r) => r.t),
    );
  }
  return out;
}

describe(`UserDeleted: notifications erases what it holds about the user (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  const tag = randomUUID().slice(0, 8);
  const first = `ann-${tag}@example.com`;
  const second = `ann-${tag}@work.example`;
  const username = `ann-${tag}`;
  const key = `sitemail_ann-${tag}-0123456789abcdefghijklmnopqrstuvwxyz`;
  const bobTag = randomUUID().slice(0, 8);
  const otherKey = `sitemail_bob-${tag}-0123456789abcdefghijklmnopqrstuvwxyz`;
  const ann = new Stream();
  const bob = new Stream();
  // The deliveries are due tomorrow: nothing here sends them (no worker either).
  const now = new Date(Date.now() + 24 * 3_600_000);
  const site = siteFor({ host: '127.0.0.1', port: 2525 });
  const handle = (e: Parameters<typeof handleEvent>[1], at = now) => handleEvent(db, e, site, at);
  const statuses = async () =>
    (
      await db.query<{ email_kind: string; status: string; suppression_reason: string | null }>(
        'SELECT email_kind, status, suppression_reason FROM deliveries WHERE user_id = $1 ORDER BY seq',
        [ann.userId],
      )
    ).rows;
  const deliveryLog = (k: string) =>
    app.inject({ method: 'GET', url: '/deliveries', headers: { authorization: `token ${k}` } });

  before(async () => {
    db = await notificationsDb('erasure');
    // Unverified primary: the code monitor email awaits its verification, the key email is
    // suppressed naming the address; each address gets its verification email.
    await handle(codeMonitorTriggered(ann.userId, 'ann-monitor', 1));
    await handle(ann.created({ email: first, verified: false, username, siteAdmin: true }));
    await handle(ann.next('EmailAdded', { email: second }));
    await handle(ann.apiKeyCreated('CI', apiKeySecretSha256(key)));
    const sent = (await handle(ann.verificationRequested(first))).deliveryIds[0]!;
    const retrying = (await handle(ann.verificationRequested(second, 'verify-token-2'))).deliveryIds[0]!;
    // The log of a sent email and of one being retried quote the address, as SMTP replies do.
    await db.query(
      `UPDATE deliveries SET status = 'sent', sent_at = $2, attempt_count = 1, smtp_response = $3 WHERE id = $1`,
      [sent, now.toISOString(), `250 2.0.0 OK queued for <${first}>`],
    );
    await db.query(
      `UPDATE deliveries SET status = 'deferred', attempt_count = 1, last_error = $2 WHERE id = $1`,
      [retrying, `451 4.7.1 <${second}>: try again later`],
    );
    for (const [id, outcome, reply] of [
      [sent, 'sent', `250 2.0.0 OK queued for <${first}>`],
      [retrying, 'deferred', `451 4.7.1 <${second}>: try again later`],
    ] as const) {
      await db.query(
        `INSERT INTO delivery_attempts (delivery_id, attempt, worker, started_at, finished_at, outcome, smtp_response,
           response_code, error)
         VALUES ($1, 1, 'w1', $2, $2, $3, $4, $5, $6)`,
        [id, now.toISOString(), outcome, reply, Number(reply.slice(0, 3)), outcome === 'sent' ? null : reply],
      );
    }
    // Another user, untouched by the erasure.
    await handle(
      bob.created({ email: `bob-${bobTag}@example.com`, verified: true, username: 'bob', siteAdmin: true }),
    );
    await handle(bob.apiKeyCreated('CI', apiKeySecretSha256(otherKey)));

    app = Fastify({ logger: false });
    await app.register(notificationsApp, {
      db,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await db?.close();
  });

  it('before: the tables hold the addresses and the username, the key reads the log', async () => {
    const text = [...(await allText(db)).values()].flat().join('\n');
    for (const s of [first, second, username]) assert.ok(text.includes(s), `${s} is stored before`);
    assert.equal((await deliveryLog(key)).statusCode, 200);
    assert.deepEqual(
      (await statuses()).map((d) => [d.email_kind, d.status, d.suppression_reason]),
      [
        ['code-monitor-triggered', 'awaiting-recipient', 'primary-unverified'],
        ['api-key-created', 'suppressed', 'primary-unverified'],
        ['email-verification', 'sent', null],
        ['email-verification', 'deferred', null],
      ],
    );
  });

  it('after UserDeleted: no table holds the addresses or username, pending deliveries are suppressed user-deleted, the key gets 401', async () => {
    await handle(ann.next('UserDeleted', { deletedBy: 'self' }));
    for (const [table, rows] of await allText(db)) {
      for (const row of rows) {
        for (const s of [first, second, username]) {
          assert.ok(!row.includes(s), `${table} still holds ${s}: ${row}`);
        }
      }
    }
    // The log keeps that each email existed and its status; what was to be sent is not.
    assert.deepEqual(
      (await statuses()).map((d) => [d.email_kind, d.status, d.suppression_reason]),
      [
        ['code-monitor-triggered', 'suppressed', 'user-deleted'],
        ['api-key-created', 'suppressed', 'primary-unverified'],
        ['email-verification', 'sent', null],
        ['email-verification', 'suppressed', 'user-deleted'],
      ],
    );
    const { rows: attempts } = await db.query<{ outcome: string; response_code: number }>(
      `SELECT a.outcome, a.response_code FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
       WHERE d.user_id = $1 ORDER BY a.outcome DESC`,
      [ann.userId],
    );
    assert.deepEqual(
      attempts.map((a) => [a.outcome, a.response_code]),
      [
        ['sent', 250],
        ['deferred', 451],
      ],
    );
    assert.equal((await deliveryLog(key)).statusCode, 401);
    // The other user's key and data are untouched.
    const bobs = await deliveryLog(otherKey);
    assert.equal(bobs.statusCode, 200);
    assert.ok(bobs.body.includes('bob-'), 'the other user stays in the log');
    assert.equal((await loadRecipient(db, bob.userId))?.username, 'bob');
  });

  it('later and replayed events of the user bring no personal data back, and send nothing', async () => {
    const replayed = ann.created({ email: first, verified: true, username });
    const late = await handle({ ...replayed, position: ann.position + 1 });
    assert.equal(late.queued, 0);
    const monitor = await handle(codeMonitorTriggered(ann.userId, 'again', 2));
    assert.deepEqual(
      monitor.decisions.map((d) => [d.kind, d.kind === 'suppress' ? d.reason : '', 'address' in d]),
      [['suppress', 'user-deleted', false]],
    );
    const recipient = await loadRecipient(db, ann.userId);
    assert.equal(recipient?.deleted, true);
    assert.deepEqual(recipient?.addresses, []);
    const text = [...(await allText(db)).values()].flat().join('\n');
    for (const s of [first, username]) assert.ok(!text.includes(s), `${s} came back`);
    assert.equal((await deliveryLog(key)).statusCode, 401);
  });
});
