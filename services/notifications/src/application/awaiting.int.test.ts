import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256, type FleetEvent } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { notificationsApp } from '../app.ts';
import { evolveRecipient } from '../domain/recipient.ts';
import { saveRecipient } from '../store/recipients.ts';
import { sweepAwaitingDeliveries } from './awaiting.ts';
import { type HandleEventOptions, handleEvent } from './handle-event.ts';

const ADMIN_KEY = 'sitemail_awaiting-admin-0123456789abcdefghijklmnopqrstuv';
const HOUR = 60 * 60 * 1000;

interface Row {
  status: string;
  suppression_reason: string | null;
  recipient_address: string | null;
  next_attempt_at: Date | string | null;
  pending_event: unknown;
}

describe(`an email whose recipient has not reached notifications yet (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  let site: SiteConfig;

  const handle = (e: FleetEvent, now = new Date(), o: HandleEventOptions = {}) =>
    handleEvent(db, e, site, now, o);
  const row = async (id: string) =>
    (
      await db.query<Row>(
        'SELECT status, suppression_reason, recipient_address, next_attempt_at, pending_event FROM deliveries WHERE id = $1',
        [id],
      )
    ).rows[0]!;
  const logEntry = async (id: string) => {
    const res = await app.inject({
      method: 'GET',
      url: `/deliveries/${id}`,
      headers: { authorization: `token ${ADMIN_KEY}` },
    });
    assert.equal(res.statusCode, 200);
    return res.json() as {
      status: string;
      suppressionReason: string | null;
      notSentReason: string | null;
      nextAttemptAt: string | null;
      recipientAddress: string | null;
    };
  };
  const receivedBy = (address: string) => smtp.received.filter((e) => e.envelope.to.includes(address));

  before(async () => {
    db = await notificationsDb('awaiting');
    smtp = await startSmtpServer({});
    site = siteFor(smtp);
    const admin = new Stream();
    await handle(
      admin.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
    );
    await handle(admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY)));
    app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false } } });
    await app.register(notificationsApp, {
      db,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      worker: { pollIntervalMs: 50, poolSize: 2, backoff: { baseMs: 50 } },
    });
    await app.ready();
  });

  after(async () => {
    await app?.close();
    await smtp?.close();
    await db?.close();
  });

  it("delivers a code-monitor email and an invitation handled before the owner's UserCreated and verification, once each, to the verified primary", async () => {
    const owner = new Stream();
    const inviter = new Stream();
    const t0 = new Date();
    const monitor = codeMonitorTriggered(owner.userId, 'Leaked secrets');
    const m = await handle(monitor, t0);
    await handle(inviter.created({ email: 'alice@example.com', verified: true, username: 'alice' }));
    const invitation = inviter.next('UserInvited', {
      invitationId: '3e4f5a6b-7c8d-4e9f-a0b1-c2d3e4f5a6b7',
      email: 'bob@work.example',
      inviterUsername: 'alice',
      organization: 'acme',
      inviteeUserId: owner.userId,
      token: inviter.seal('invite-1', 'UserInvited'),
      // Ahead of the real clock the worker sends by: an invitation whose link has expired is not sent.
      expiresAt: new Date(t0.getTime() + 7 * 86_400_000).toISOString(),
    });
    const i = await handle(invitation, t0);
    assert.equal(m.queued + i.queued, 0);
    const ids = [m.deliveryIds[0]!, i.deliveryIds[0]!];

    // Admins see both waiting, and why, and until when.
    for (const id of ids) {
      const entry = await logEntry(id);
      assert.equal(entry.status, 'awaiting-recipient');
      assert.equal(entry.suppressionReason, 'unknown-recipient');
      assert.equal(entry.recipientAddress, null);
      assert.equal(entry.nextAttemptAt, new Date(t0.getTime() + 24 * HOUR).toISOString());
      assert.match(
        entry.notSentReason ?? '',
        /^waiting for the recipient \(the recipient is not a known user\)/,
      );
    }
    const listed = await app.inject({
      method: 'GET',
      url: `/deliveries?userId=${owner.userId}&status=awaiting-recipient`,
      headers: { authorization: `token ${ADMIN_KEY}` },
    });
    assert.equal(listed.statusCode, 200);
    assert.deepEqual(
      (listed.json() as { deliveries: { id: string }[] }).deliveries.map((d) => d.id).sort(),
      [...ids].sort(),
    );

    // A redelivered event creates nothing new.
    assert.equal((await handle(monitor)).duplicate, true);
    assert.equal((await handle(invitation)).duplicate, true);

    // The owner's stream arrives: created with an unverified primary (it keeps waiting, now for that) ...
    const created = owner.created({ email: 'bob@example.com', verified: false, username: 'bob' });
    assert.equal((await handle(created)).released, 0);
    for (const id of ids) {
      const r = await row(id);
      assert.equal(r.status, 'awaiting-recipient');
      assert.equal(r.suppression_reason, 'primary-unverified');
      assert.equal(r.recipient_address, 'bob@example.com');
    }
    assert.match((await logEntry(ids[0]!)).notSentReason ?? '', /primary email address is not verified/);

    // ... then verified: both are queued in that same transaction and the worker sends them.
    const verified = owner.verified('bob@example.com');
    assert.equal((await handle(verified)).released, 2);
    for (const id of ids) {
      await eventually(
        async () => ((await row(id)).status === 'sent' ? true : undefined),
        20_000,
        `${id} sent`,
      );
    }
    // Replaying everything, and a sweep, change nothing.
    for (const e of [monitor, invitation, created, verified]) assert.equal((await handle(e)).duplicate, true);
    assert.deepEqual(await sweepAwaitingDeliveries(db, { site, now: new Date(t0.getTime() + 25 * HOUR) }), {
      queued: 0,
      suppressed: 0,
    });
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*) AS n FROM deliveries WHERE event_id = ANY($1::uuid[])',
      [[monitor.id, invitation.id]],
    );
    assert.equal(Number(rows[0]!.n), 2);

    const emails = receivedBy('bob@example.com');
    assert.equal(emails.length, 2);
    assert.equal(receivedBy('bob@work.example').length, 0);
    const monitorEmail = emails.find((e) => e.text?.includes('Leaked secrets'));
    assert.ok(monitorEmail, 'the code-monitor email');
    const invitationEmail = emails.find((e) => e !== monitorEmail);
    // The invitation link still names the invited address, which accounts checks the code against.
    assert.match(invitationEmail?.text ?? '', /invitation\?email=bob%40work\.example/);
    for (const id of ids) {
      const entry = await logEntry(id);
      assert.equal(entry.status, 'sent');
      assert.equal(entry.suppressionReason, null);
      assert.equal(entry.recipientAddress, 'bob@example.com');
    }
    assert.equal((await row(ids[0]!)).pending_event, null);
  });

  it('ends suppressed as unknown-recipient when the recipient has not arrived by the end of the wait', async () => {
    const ghost = new Stream();
    const t0 = new Date();
    const h = await handle(codeMonitorTriggered(ghost.userId), t0, { awaitRecipientMs: HOUR });
    const [id] = h.deliveryIds;

    await sweepAwaitingDeliveries(db, { site, now: new Date(t0.getTime() + HOUR - 1) });
    assert.equal((await row(id!)).status, 'awaiting-recipient');

    assert.deepEqual(await sweepAwaitingDeliveries(db, { site, now: new Date(t0.getTime() + HOUR) }), {
      queued: 0,
      suppressed: 1,
    });
    const r = await row(id!);
    assert.equal(r.status, 'suppressed');
    assert.equal(r.suppression_reason, 'unknown-recipient');
    assert.equal(r.next_attempt_at, null);
    assert.equal(r.pending_event, null);
    const entry = await logEntry(id!);
    assert.equal(entry.notSentReason, 'the recipient is not a known user');

    // The user turning up later does not bring a final suppression back.
    const created = ghost.created({ email: 'ghost@example.com', verified: true });
    assert.equal((await handle(created)).released, 0);
    assert.equal((await row(id!)).status, 'suppressed');
    assert.equal(receivedBy('ghost@example.com').length, 0);
  });

  it('the running worker ends a wait that is over on its own', async () => {
    const ghost = new Stream();
    const h = await handle(codeMonitorTriggered(ghost.userId), new Date(), { awaitRecipientMs: 0 });
    const r = await eventually(async () => {
      const current = await row(h.deliveryIds[0]!);
      return current.status === 'suppressed' ? current : undefined;
    });
    assert.equal(r.suppression_reason, 'unknown-recipient');
  });

  it("the worker's sweep releases a delivery whose recipient was committed by a concurrent transaction that could not see it", async () => {
    const late = new Stream();
    const h = await handle(codeMonitorTriggered(late.userId, 'Late monitor'));
    // What a concurrent handler of UserCreated leaves: the recipient saved, the awaiting row not yet visible to it.
    await saveRecipient(
      db,
      evolveRecipient(undefined, late.created({ email: 'late@example.com', verified: true }))!,
    );
    await eventually(async () => ((await row(h.deliveryIds[0]!)).status === 'sent' ? true : undefined));
    assert.equal(receivedBy('late@example.com').length, 1);
  });
});
