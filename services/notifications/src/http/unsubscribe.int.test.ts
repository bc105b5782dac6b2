/**
 * One-click unsubscribe end to end in one service (issue 11 item 7): the real worker sends a
 * code-monitoring email to a real SMTP server with both RFC 8058 headers and the link in its body;
 * POSTing the one-click URL answers 200; the next code-monitoring email is suppressed
 * `unsubscribed` (in the delivery log, no connection), while an API-key email still goes out.
 * Also: GET changes nothing, refused tokens, erasure, rate limit, the request log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { redactUrl } from '@sitemail/service-kit';
import { type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { type DeliveryApp, startDeliveryApp } from '../../test/delivery-fixture.ts';
import { codeMonitorTriggered, Stream, testLinkKey } from '../../test/events.ts';
import { issueUnsubscribeToken, UNSUBSCRIBE_TOKEN_TTL_MS } from '../domain/unsubscribe-token.ts';
import { unsubscribedKindsOf } from '../store/unsubscribes.ts';
import { unsubscribeRoutes } from './unsubscribe.ts';

const ADMIN_KEY = 'sitemail_unsub-admin-0123456789abcdefghijklmnopqrstuvwx';
const ONE_CLICK = 'List-Unsubscribe=One-Click';
const form = { 'content-type': 'application/x-www-form-urlencoded' };

describe(`one-click unsubscribe (${testDatabaseKind()})`, () => {
  let fx: DeliveryApp;
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  const alice = new Stream();
  let monitorNo = 0;
  const handle: DeliveryApp['handle'] = (e) => fx.handle(e);
  const settled = (id: string) => fx.settled(id);
  const monitorEmail = async (s: Stream) =>
    (await handle(codeMonitorTriggered(s.userId, `monitor ${++monitorNo}`))).deliveryIds[0]!;
  /** The path of a URL under the site's externalURL (the front routes it to notifications). */
  const pathOf = (url: string) => new URL(url).pathname;

  before(async () => {
    fx = await startDeliveryApp('unsubscribe', { adminKey: ADMIN_KEY });
    ({ db, smtp, app } = fx);
    await handle(alice.created({ email: 'alice@example.com', verified: true, username: 'alice' }));
  });

  after(() => fx?.close());

  it('a code-monitoring email carries both RFC 8058 headers; the one-click POST answers 200; the next is suppressed `unsubscribed`; an API-key email still goes out', async () => {
    const first = await monitorEmail(alice);
    assert.equal((await settled(first)).status, 'sent');
    const email = smtp.received.find(
      (m) => m.to?.includes('alice@example.com') && /monitor 1/.test(m.subject ?? ''),
    );
    assert.ok(email, 'the code-monitoring email arrived');
    // mailparser turns List-* headers into a `list` object; the raw message is what providers read
    const raw = email.raw.replace(/\r\n[ \t]+/g, ' ');
    const listUnsubscribe = /^List-Unsubscribe: <([^>]+)>\r?$/im.exec(raw)?.[1];
    assert.ok(listUnsubscribe, raw.slice(0, 2000));
    assert.match(raw, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r?$/im);
    assert.match(raw, /^Auto-Submitted: auto-generated\r?$/im);
    assert.match(listUnsubscribe, /^https:\/\/sourcegraph\.example\.com\/-\/unsubscribe\/[A-Za-z0-9_-]{72}$/);
    assert.equal(listUnsubscribe.includes('alice'), false, 'no address in the URL');
    assert.ok(email.text?.includes(listUnsubscribe), 'the link in the text body');
    assert.ok(email.html?.includes(`href="${listUnsubscribe}"`), 'the link in the HTML body');

    // GET (a link scanner, or the user's browser) only shows the confirmation page
    const page = await app.inject({
      method: 'GET',
      url: pathOf(listUnsubscribe),
      headers: { accept: 'text/html' },
    });
    assert.equal(page.statusCode, 200);
    assert.match(page.headers['content-type'] as string, /^text\/html/);
    assert.match(
      page.body,
      /<form method="post" action="[A-Za-z0-9_-]{72}"><input type="hidden" name="List-Unsubscribe" value="One-Click">/,
    );
    const asJson = await app.inject({ method: 'GET', url: pathOf(listUnsubscribe) });
    assert.equal(asJson.json().emailKind, 'code-monitor-triggered');
    assert.deepEqual([...(await unsubscribedKindsOf(db, alice.userId))], [], 'GET unsubscribes nobody');

    // what a mailbox provider sends (RFC 8058 §3.2): a form POST, no cookie, no login
    const posted = await app.inject({
      method: 'POST',
      url: pathOf(listUnsubscribe),
      headers: form,
      payload: ONE_CLICK,
    });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.deepEqual(posted.json(), {
      message: 'You will no longer get code monitor notifications by email.',
      emailKind: 'code-monitor-triggered',
    });
    assert.equal(posted.headers['cache-control'], 'no-store');
    const again = await app.inject({
      method: 'POST',
      url: pathOf(listUnsubscribe),
      headers: form,
      payload: ONE_CLICK,
    });
    assert.equal(again.statusCode, 200, 'idempotent');
    assert.deepEqual([...(await unsubscribedKindsOf(db, alice.userId))], ['code-monitor-triggered']);

    const next = await monitorEmail(alice);
    assert.deepEqual(await settled(next), { status: 'suppressed', suppression_reason: 'unsubscribed' });
    const logged = (
      await app.inject({
        method: 'GET',
        url: `/deliveries/${next}`,
        headers: { authorization: `token ${ADMIN_KEY}` },
      })
    ).json();
    assert.equal(logged.suppressionReason, 'unsubscribed');
    assert.match(logged.notSentReason, /unsubscribed/);
    assert.equal(logged.recipientAddress, 'alice@example.com');

    const key = (await handle(alice.apiKeyCreated('ci'))).deliveryIds[0]!;
    assert.equal((await settled(key)).status, 'sent', 'security emails are never unsubscribable');
    const keyEmail = smtp.received.find(
      (m) => m.subject?.startsWith('An API key was created') && m.to?.includes('alice'),
    );
    assert.ok(keyEmail);
    assert.equal(/^List-Unsubscribe/im.test(keyEmail.raw), false, 'no List-Unsubscribe on a security email');
    assert.equal(
      smtp.received.filter((m) => /monitor 2/.test(m.subject ?? '')).length,
      0,
      'the suppressed email never reached the server',
    );
  });

  it('the confirmation page form posts the one-click body too (a browser, Accept: text/html)', async () => {
    const bob = new Stream();
    await handle(bob.created({ email: 'bob@example.com', verified: true, username: 'bob' }));
    const token = issueUnsubscribeToken(
      { userId: bob.userId, kind: 'code-monitor-triggered', issuedAt: new Date() },
      testLinkKey,
    );
    const r = await app.inject({
      method: 'POST',
      url: `/-/unsubscribe/${token}`,
      headers: { ...form, accept: 'text/html' },
      payload: ONE_CLICK,
    });
    assert.equal(r.statusCode, 200);
    assert.match(r.body, /<h1>Unsubscribed<\/h1>/);
    assert.deepEqual([...(await unsubscribedKindsOf(db, bob.userId))], ['code-monitor-triggered']);
  });

  it('refuses a tampered or foreign token 400 and an expired one 410, saying nothing more; a wrong body is 400', async () => {
    const token = issueUnsubscribeToken(
      { userId: alice.userId, kind: 'code-monitor-triggered', issuedAt: new Date() },
      testLinkKey,
    );
    const tampered = `${token.slice(0, 10)}${token[10] === 'A' ? 'B' : 'A'}${token.slice(11)}`;
    for (const bad of [tampered, 'nope', 'x'.repeat(72)]) {
      const r = await app.inject({
        method: 'POST',
        url: `/-/unsubscribe/${bad}`,
        headers: form,
        payload: ONE_CLICK,
      });
      assert.equal(r.statusCode, 400, bad);
      assert.match(r.headers['content-type'] as string, /^application\/problem\+json/);
      assert.deepEqual(
        { code: r.json().code, detail: r.json().detail, field: r.json().field },
        { code: 'invalid-link', detail: 'this unsubscribe link is not valid', field: 'token' },
      );
      assert.equal((await app.inject({ method: 'GET', url: `/-/unsubscribe/${bad}` })).statusCode, 400);
    }
    const old = issueUnsubscribeToken(
      {
        userId: alice.userId,
        kind: 'code-monitor-triggered',
        issuedAt: new Date(Date.now() - UNSUBSCRIBE_TOKEN_TTL_MS - 60_000),
      },
      testLinkKey,
    );
    const expired = await app.inject({
      method: 'POST',
      url: `/-/unsubscribe/${old}`,
      headers: form,
      payload: ONE_CLICK,
    });
    assert.equal(expired.statusCode, 410);
    assert.equal(expired.json().code, 'link-expired');
    const wrongBody = await app.inject({
      method: 'POST',
      url: `/-/unsubscribe/${token}`,
      headers: form,
      payload: 'List-Unsubscribe=Yes',
    });
    assert.equal(wrongBody.statusCode, 400);
    const noBody = await app.inject({ method: 'POST', url: `/-/unsubscribe/${token}` });
    assert.equal(noBody.statusCode, 400);
  });

  it('a deleted user: erasure removes their unsubscribes, and a later POST records nothing (still 200)', async () => {
    const carol = new Stream();
    await handle(carol.created({ email: 'carol@example.com', verified: true, username: 'carol' }));
    const token = issueUnsubscribeToken(
      { userId: carol.userId, kind: 'code-monitor-triggered', issuedAt: new Date() },
      testLinkKey,
    );
    const post = () =>
      app.inject({ method: 'POST', url: `/-/unsubscribe/${token}`, headers: form, payload: ONE_CLICK });
    assert.equal((await post()).statusCode, 200);
    assert.equal((await unsubscribedKindsOf(db, carol.userId)).size, 1);
    await handle(carol.next('UserDeleted', { deletedBy: 'self' }));
    assert.equal((await unsubscribedKindsOf(db, carol.userId)).size, 0, 'erased with the user');
    assert.equal((await post()).statusCode, 200);
    assert.equal((await unsubscribedKindsOf(db, carol.userId)).size, 0, 'nothing recorded for a tombstone');
  });

  it('is in the OpenAPI document: both methods, public, the form body, every status', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    const ops = doc.paths['/-/unsubscribe/{token}'];
    assert.deepEqual(Object.keys(ops).sort(), ['get', 'post']);
    for (const op of [ops.get, ops.post]) {
      assert.equal(op.security, undefined, 'no credentials');
      assert.equal(op.parameters[0].name, 'token');
      for (const status of ['200', '400', '410', '429']) assert.ok(op.responses[status], status);
    }
    const body = ops.post.requestBody.content['application/x-www-form-urlencoded'].schema;
    assert.deepEqual(body.properties['List-Unsubscribe'].enum, ['One-Click']);
    assert.ok(ops.post.responses['200'].content['application/json'].schema.properties.emailKind);
  });

  it('is rate-limited per client address, and the request log never carries the token', async () => {
    const limited = Fastify({ logger: false });
    await limited.register(unsubscribeRoutes, {
      db,
      linkTokenKeys: testLinkKey,
      rateLimit: { max: 2, timeWindowMs: 60_000 },
    });
    await limited.ready();
    try {
      const hit = (ip: string) =>
        limited.inject({ method: 'GET', url: '/-/unsubscribe/nope', remoteAddress: ip });
      assert.equal((await hit('198.51.100.1')).statusCode, 400);
      assert.equal((await hit('198.51.100.1')).statusCode, 400);
      const third = await hit('198.51.100.1');
      assert.equal(third.statusCode, 429);
      assert.equal(third.json().code, 'rate-limited');
      assert.equal((await hit('198.51.100.2')).statusCode, 400, 'another address has its own budget');
    } finally {
      await limited.close();
    }
    const token = 'A'.repeat(72);
    assert.equal(redactUrl(`/-/unsubscribe/${token}`), '/-/unsubscribe/REDACTED');
    assert.equal(redactUrl(`/sg/-/unsubscribe/${token}?x=1`), '/sg/-/unsubscribe/REDACTED?x=1');
  });
});
