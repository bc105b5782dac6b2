/**
 * Bounces that arrive later (issue 11 item 5), in one service on a real SMTP server: the worker
 * sends, the server accepts; a delivery status notification for that Message-ID posted to
 * `POST /bounces` marks the delivery bounced and puts the address on the suppression list, so
 * the next product email to it is suppressed `address-undeliverable` without a connection.
 * Posting it again changes nothing. Message-scoped and delayed reports, matching by our header,
 * an unmatched DSN, and the route's refusals (401, 403, 400, 413, 415).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import type { FastifyInstance } from 'fastify';
import { type DeliveryApp, startDeliveryApp } from '../../test/delivery-fixture.ts';
import { Stream } from '../../test/events.ts';
import {
  gmailMailboxFull,
  notDsns,
  postfixBounce,
  rfc3464DelayedDsn,
  sesBounce,
  unknownMessageDsn,
} from '../smtp/dsn.test-support.ts';

const ADMIN_KEY = 'sitemail_bounces-admin-0123456789abcdefghijklmnopqrstuvw';
const USER_KEY = 'sitemail_bounces-user-0123456789abcdefghijklmnopqrstuvwx';

describe(`bounces after acceptance: POST /bounces (${testDatabaseKind()})`, () => {
  let fx: DeliveryApp;
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  const alice = new Stream();
  const bob = new Stream();
  const handle: DeliveryApp['handle'] = (e) => fx.handle(e);
  const get = (url: string, key = ADMIN_KEY) =>
    app.inject({ method: 'GET', url, headers: { authorization: `token ${key}` } });
  const post = (body: string, o: { key?: string | null; type?: string } = {}) =>
    app.inject({
      method: 'POST',
      url: '/bounces',
      headers: {
        'content-type': o.type ?? 'message/rfc822',
        ...(o.key === null ? {} : { authorization: `token ${o.key ?? ADMIN_KEY}` }),
      },
      payload: body,
    });
  const status = async (id: string) =>
    (await db.query<{ status: string }>('SELECT status FROM deliveries WHERE id = $1', [id])).rows[0]!.status;
  const settled = async (id: string) => (await fx.settled(id)).status;
  /** An email accepted by the SMTP server: its delivery id and the Message-ID the server received. */
  async function accepted(stream: Stream, name: string): Promise<{ id: string; messageId: string }> {
    const id = (await handle(stream.apiKeyCreated(name))).deliveryIds[0]!;
    assert.equal(await settled(id), 'sent');
    const mail = smtp.received.find((m) => m.headers.get('x-sitemail-delivery') === id);
    assert.ok(mail?.messageId, 'the server received it with a Message-ID');
    assert.deepEqual(mail.envelope.dsn, { ret: 'HDRS', envid: id, notify: [['FAILURE', 'DELAY']] });
    return { id, messageId: mail.messageId };
  }

  before(async () => {
    // A relay offering DSN (RFC 3461): each delivery asks for bounces naming it.
    fx = await startDeliveryApp('bounces', { adminKey: ADMIN_KEY, smtp: { dsn: true } });
    ({ db, smtp, app } = fx);
    await handle(alice.created({ email: 'Alice@Example.com', verified: true, username: 'alice' }));
    await settled((await handle(alice.apiKeyCreated('alice', apiKeySecretSha256(USER_KEY)))).deliveryIds[0]!);
    await handle(bob.created({ email: 'bob@example.com', verified: true, username: 'bob' }));
  });

  after(() => fx?.close());

  it('a DSN for a message accepted earlier marks it bounced and suppresses the address; the next product email is suppressed without a connection; the same DSN again changes nothing', async () => {
    const sent = await accepted(alice, 'ci');
    const dsn = postfixBounce({ messageId: sent.messageId, recipient: 'alice@example.com' });

    const res = await post(dsn);
    assert.equal(res.statusCode, 202, res.body);
    const body = res.json();
    assert.equal(body.matched, 1);
    assert.equal(body.deliveryId, sent.id);
    assert.equal(body.originalMessageId, sent.messageId);
    assert.equal(body.reportingMta, 'mail.example.net');
    assert.deepEqual(
      body.reports.map((r: { effect: string; replyScope: string; status: string }) => [
        r.effect,
        r.replyScope,
        r.status,
      ]),
      [['bounced', 'address', '5.1.1']],
    );

    const logged = (await get(`/deliveries/${sent.id}`)).json();
    assert.equal(logged.status, 'failed');
    assert.equal(logged.failureReason, 'bounced');
    assert.equal(logged.replyScope, 'address');
    assert.ok(logged.sentAt, 'it was accepted first');
    assert.match(
      logged.notSentReason,
      /^bounced after acceptance \(DSN from mail\.example\.net\): 550 5\.1\.1 /,
    );
    assert.equal(logged.bounces.length, 1);
    assert.equal(logged.bounces[0].action, 'failed');
    assert.equal(logged.bounces[0].effect, 'bounced');
    assert.equal(logged.bounces[0].remoteMta, 'mx.example.org');
    assert.equal(logged.bounces[0].receivedBy, `admin:${fx.admin.userId}`);
    assert.match(
      logged.bounces[0].diagnosticCode,
      /^smtp; 550 5\.1\.1 <alice@example\.com>: Recipient address/,
    );

    const entry = (await get('/suppressions/alice@example.com')).json();
    assert.equal(entry.active, true);
    assert.equal(entry.deliveryId, sent.id);
    assert.equal(entry.responseCode, 550);
    assert.match(entry.reply, /bounced after acceptance.*5\.1\.1/);

    const sessions = smtp.sessions.length;
    const next = (await handle(alice.apiKeyCreated('deploy'))).deliveryIds[0]!;
    assert.equal(await settled(next), 'suppressed');
    assert.equal((await get(`/deliveries/${next}`)).json().suppressionReason, 'address-undeliverable');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(smtp.sessions.length, sessions, 'no connection for the suppressed email');

    // Idempotent: posted again (after an admin lifted the address) it neither records nor relists.
    assert.equal(
      (
        await app.inject({
          method: 'DELETE',
          url: '/suppressions/alice@example.com',
          headers: { authorization: `token ${ADMIN_KEY}` },
        })
      ).statusCode,
      200,
    );
    const again = await post(dsn);
    assert.equal(again.statusCode, 202);
    assert.deepEqual(
      again.json().reports.map((r: { effect: string }) => r.effect),
      ['duplicate'],
    );
    assert.equal((await get('/suppressions/alice@example.com')).json().active, false);
    assert.equal((await get(`/deliveries/${sent.id}`)).json().bounces.length, 1);

    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(metrics, /^notifications_bounces_total\{action="failed",scope="address"\} 1$/m);
  });

  it('delayed is recorded with no status change; a full mailbox fails that delivery only; our header or the envelope id match without the Message-ID; an unknown message is matched 0', async () => {
    const sent = await accepted(bob, 'first');
    const delayed = await post(
      rfc3464DelayedDsn({ messageId: sent.messageId, recipient: 'bob@example.com' }),
    );
    assert.equal(delayed.statusCode, 202, delayed.body);
    assert.deepEqual(
      delayed.json().reports.map((r: { effect: string }) => r.effect),
      ['recorded'],
    );
    assert.equal(await status(sent.id), 'sent');
    assert.equal((await get(`/deliveries/${sent.id}`)).json().bounces[0].action, 'delayed');

    const full = await post(gmailMailboxFull({ messageId: sent.messageId, recipient: 'bob@example.com' }));
    assert.deepEqual(
      full.json().reports.map((r: { effect: string; replyScope: string }) => [r.effect, r.replyScope]),
      [['bounced', 'message']],
    );
    const logged = (await get(`/deliveries/${sent.id}`)).json();
    assert.equal(logged.status, 'failed');
    assert.equal(logged.failureReason, 'bounced');
    assert.equal(logged.replyScope, 'message');
    assert.deepEqual(
      logged.bounces.map((b: { action: string; effect: string }) => [b.action, b.effect]),
      [
        ['delayed', 'recorded'],
        ['failed', 'bounced'],
      ],
    );
    assert.equal(
      (await get('/suppressions/bob@example.com')).statusCode,
      404,
      'a message problem lists nothing',
    );

    // The X-Sitemail-Delivery header of the returned message names the delivery, whatever the Message-ID.
    const second = await accepted(bob, 'second');
    const third = await accepted(bob, 'third');
    const byHeader = await post(
      sesBounce({
        messageId: '<rewritten-by-a-relay@example.net>',
        recipient: 'bob@example.com',
        deliveryId: second.id,
      }),
    );
    assert.equal(byHeader.json().deliveryId, second.id);
    assert.equal(byHeader.json().reports[0].effect, 'bounced');
    assert.equal((await get('/suppressions/bob@example.com')).json().deliveryId, second.id);

    // The envelope id alone (Message-ID rewritten, our header gone): the ENVID we sent names it.
    const byEnvelopeId = await post(
      postfixBounce({
        messageId: '<rewritten-again@example.net>',
        recipient: 'bob@example.com',
        deliveryId: third.id,
      }).replace(/X-Sitemail-Delivery: [^\r]*\r\n/, ''),
    );
    assert.equal(byEnvelopeId.json().originalEnvelopeId, third.id);
    assert.equal(byEnvelopeId.json().deliveryId, third.id);

    const unknown = await post(unknownMessageDsn());
    assert.equal(unknown.statusCode, 202);
    assert.equal(unknown.json().matched, 0);
    assert.equal(unknown.json().deliveryId, null);
    assert.deepEqual(
      unknown.json().reports.map((r: { effect: string }) => r.effect),
      ['unmatched'],
    );
  });

  it("the user's deletion erases the DSN reports of their deliveries (they quote the address)", async () => {
    const carol = new Stream();
    await handle(carol.created({ email: 'carol@example.com', verified: true, username: 'carol' }));
    const sent = await accepted(carol, 'ci');
    const res = await post(gmailMailboxFull({ messageId: sent.messageId, recipient: 'carol@example.com' }));
    assert.equal(res.json().reports[0].effect, 'bounced');
    const reports = async () =>
      (
        await db.query<{ n: string }>('SELECT count(*) AS n FROM delivery_bounces WHERE delivery_id = $1', [
          sent.id,
        ])
      ).rows[0]!.n;
    assert.equal(Number(await reports()), 1);
    await handle(carol.next('UserDeleted', { deletedBy: 'self' }));
    assert.equal(Number(await reports()), 0);
    assert.deepEqual((await get(`/deliveries/${sent.id}`)).json().bounces, []);
  });

  it('refuses: 401 without a key, 403 for a non-admin, 400 naming what is wrong, 413 past 1 MiB, 415 for JSON; a DSN past the default 64 KiB is taken', async () => {
    const dsn = postfixBounce({ messageId: '<x@example.net>', recipient: 'x@example.net' });
    assert.equal((await post(dsn, { key: null })).statusCode, 401);
    const forbidden = await post(dsn, { key: USER_KEY });
    assert.equal(forbidden.statusCode, 403);
    assert.match(forbidden.json().detail, /site admins/);

    const notDsn = await post(notDsns.plainText, { type: 'text/plain' });
    assert.equal(notDsn.statusCode, 400);
    assert.equal(notDsn.json().field, 'body');
    assert.match(notDsn.json().detail, /not a delivery status notification: .*not multipart\/report/);
    const mdn = await post(notDsns.readReceipt);
    assert.match(mdn.json().detail, /report-type=disposition-notification/);

    const padding = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil((1024 * 1024) / 78) + 10);
    const huge = await post(dsn.replace('This is a MIME-encapsulated message.', padding));
    assert.equal(huge.statusCode, 413);
    assert.match(huge.headers['content-type'] as string, /application\/problem\+json/);

    const large = dsn.replace('This is a MIME-encapsulated message.', padding.slice(0, 200 * 1024));
    const taken = await post(large, { type: 'text/plain' });
    assert.equal(taken.statusCode, 202, taken.body);
    assert.equal(taken.json().matched, 0);

    const json = await app.inject({
      method: 'POST',
      url: '/bounces',
      headers: { authorization: `token ${ADMIN_KEY}`, 'content-type': 'application/json' },
      payload: JSON.stringify({ dsn }),
    });
    assert.equal(json.statusCode, 415);

    const op = (await app.inject({ method: 'GET', url: '/openapi.json' })).json().paths['/bounces'].post;
    assert.deepEqual(Object.keys(op.requestBody.content).sort(), ['message/rfc822', 'text/plain']);
    assert.deepEqual(Object.keys(op.responses).sort(), ['202', '400', '401', '403', '413', '415', '500']);
    assert.ok(op.responses['202'].content['application/json'].schema.properties.reports);
  });
});
