/**
 * The suppression list and the opt-outs apply to emails already queued (issue 11 follow-up): the
 * claim reads both again, in its statement, with the policy's rule. Emails are queued while no
 * worker runs, then the address is listed (through `recordOutcomes`, as a 550 5.1.1 lists it) or
 * the user unsubscribes (`recordUnsubscribe`, as the one-click POST does), then a worker runs
 * against the testkit's SMTP server: the product email is finished `suppressed` without ever
 * reaching the server, the verification-type email still goes. And an email awaiting its
 * recipient is decided with the list when released.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../../test/harness.ts';
import { handleEvent } from '../application/handle-event.ts';
import { createMailer } from '../smtp/index.ts';
import { claimDueDeliveries, recordOutcomes } from '../store/queue.ts';
import { recordUnsubscribe } from '../store/unsubscribes.ts';
import { DeliveryWorker } from './worker.ts';

interface Row {
  status: string;
  suppression_reason: string | null;
  attempt_count: number;
  attempts: number;
}

describe(`queued emails meet the suppression list and opt-outs at claim (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let mailer: ReturnType<typeof createMailer>;
  const inviter = new Stream();
  const handle = (e: Parameters<typeof handleEvent>[1]) => handleEvent(db, e, siteFor(smtp), new Date());
  const row = async (id: string): Promise<Row> => {
    const { rows } = await db.query<Row>(
      `SELECT status, suppression_reason, attempt_count,
         (SELECT count(*)::int FROM delivery_attempts a WHERE a.delivery_id = d.id) AS attempts
       FROM deliveries d WHERE id = $1`,
      [id],
    );
    return rows[0]!;
  };
  const settled = (id: string) =>
    eventually(async () => {
      const r = await row(id);
      return ['sent', 'failed', 'suppressed'].includes(r.status) ? r : undefined;
    });
  const receivedBy = (address: string) =>
    smtp.received
      .filter((m) => m.envelope.to.some((to) => to.toLowerCase() === address))
      .map((m) => m.subject);

  /** Runs a worker until every id is settled; returns their rows. */
  const runWorker = async (ids: string[]) => {
    const worker = new DeliveryWorker({
      db,
      mailer,
      siteConfig: () => siteFor(smtp),
      linkTokenKeys: testLinkKey,
      pollIntervalMs: 50,
    });
    worker.start();
    try {
      return await Promise.all(ids.map(settled));
    } finally {
      await worker.stop();
    }
  };

  /**
   * Starts listing `address`: an invitation to it is queued and claimed (nothing else is due).
   * The returned function records its `550 5.1.1`, which lists the address in the same statement.
   */
  const bounceTo = async (address: string) => {
    const invited = await handle(
      inviter.next('UserInvited', {
        invitationId: crypto.randomUUID(),
        email: address,
        inviterUsername: 'root',
        token: inviter.seal('invite', 'UserInvited'),
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      }),
    );
    const now = new Date();
    const [claim] = await claimDueDeliveries(db, { worker: 'bouncer', limit: 1, now, claimMs: 60_000 });
    assert.equal(claim?.id, invited.deliveryIds[0]);
    return async () => {
      const recorded = await recordOutcomes(db, 'bouncer', [
        {
          delivery: claim!,
          status: 'failed',
          startedAt: now,
          finishedAt: new Date(),
          error: 'mail: 550 5.1.1 <x>: no such mailbox',
          step: 'envelope',
          responseCode: 550,
          replyScope: 'address',
          failureReason: 'rejected',
        },
      ]);
      assert.equal(recorded.size, 1);
    };
  };

  before(async () => {
    db = await notificationsDb('suppressed_at_claim');
    smtp = await startSmtpServer();
    mailer = createMailer(() => siteFor(smtp), { poolSize: 2 });
    await handle(inviter.created({ email: 'root@example.com', verified: true, username: 'root' }));
  });
  after(async () => {
    await mailer?.close();
    await smtp?.close();
    await db?.close();
  });

  it('an address listed after its emails were queued: the product email is suppressed at claim, set-password still sent', async () => {
    const alice = new Stream();
    await handle(alice.created({ email: 'Alice@Example.com', verified: true, username: 'alice' }));
    const listIt = await bounceTo('alice@example.com');
    const product = (await handle(alice.apiKeyCreated('deploy'))).deliveryIds[0]!;
    const setPassword = (
      await handle(
        alice.next('PasswordSetLinkRequested', {
          email: 'Alice@Example.com',
          token: alice.seal('set-1', 'PasswordSetLinkRequested'),
          expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        }),
      )
    ).deliveryIds[0]!;
    assert.equal((await row(product)).status, 'queued', 'queued before the address was listed');
    await listIt();

    const sessions = smtp.sessions.length;
    const [p, s] = await runWorker([product, setPassword]);
    assert.deepEqual(p, {
      status: 'suppressed',
      suppression_reason: 'address-undeliverable',
      attempt_count: 0,
      attempts: 0,
    });
    assert.equal(s?.status, 'sent');
    assert.deepEqual(receivedBy('alice@example.com'), ['Set your password on Example Instance']);
    assert.ok(smtp.sessions.length - sessions <= 2, 'at most the pool for the one email sent');
  });

  it('a user who unsubscribed after a code-monitoring email was queued: it is suppressed at claim, the API-key email still sent', async () => {
    const bob = new Stream();
    await handle(bob.created({ email: 'bob@example.com', verified: true, username: 'bob' }));
    const monitor = (await handle(codeMonitorTriggered(bob.userId, 'Leaked keys'))).deliveryIds[0]!;
    const apiKey = (await handle(bob.apiKeyCreated('ci'))).deliveryIds[0]!;
    assert.equal((await row(monitor)).status, 'queued');
    assert.equal(await recordUnsubscribe(db, bob.userId, 'code-monitor-triggered', new Date()), true);

    const [m, k] = await runWorker([monitor, apiKey]);
    assert.deepEqual(m, {
      status: 'suppressed',
      suppression_reason: 'unsubscribed',
      attempt_count: 0,
      attempts: 0,
    });
    assert.equal(k?.status, 'sent');
    assert.deepEqual(receivedBy('bob@example.com'), [
      'An API key was created on your Example Instance account',
    ]);
  });

  it('an email awaiting its recipient whose address was listed meanwhile is suppressed when released', async () => {
    const carol = new Stream();
    const waiting = await handle(codeMonitorTriggered(carol.userId, 'Waits for carol'));
    const monitor = waiting.deliveryIds[0]!;
    assert.equal((await row(monitor)).status, 'awaiting-recipient');
    await (await bounceTo('carol@example.com'))();

    const created = await handle(
      carol.created({ email: 'carol@example.com', verified: true, username: 'carol' }),
    );
    assert.equal(created.released, 0);
    const r = await row(monitor);
    assert.equal(r.status, 'suppressed');
    assert.equal(r.suppression_reason, 'address-undeliverable');
  });
});
