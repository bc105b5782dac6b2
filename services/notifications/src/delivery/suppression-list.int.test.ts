/**
 * The suppression list end to end in one service (issue 11 item 4): a real SMTP server answers
 * `550 5.1.1`, the worker records the failure and the address goes on the list in the same
 * statement; the next product email is suppressed `address-undeliverable` without a connection;
 * an admin lifts it through REST and the next email goes out; a verification email to a listed
 * address is still tried, and accepted, lifts the entry.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import type { FastifyInstance } from 'fastify';
import { type DeliveryApp, startDeliveryApp } from '../../test/delivery-fixture.ts';
import { Stream } from '../../test/events.ts';

const ADMIN_KEY = 'sitemail_suppress-admin-0123456789abcdefghijklmnopqrstuv';
const USER_KEY = 'sitemail_suppress-user-0123456789abcdefghijklmnopqrstuvw';
const noMailbox = [
  { stage: 'rcpt' as const, code: 550, times: 1, message: '550 5.1.1 <x>: no such mailbox' },
];

describe(`the suppression list (${testDatabaseKind()})`, () => {
  let fx: DeliveryApp;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  const alice = new Stream();
  const handle: DeliveryApp['handle'] = (e) => fx.handle(e);
  const settled = (id: string) => fx.settled(id);
  const call = (method: 'GET' | 'DELETE', url: string, key = ADMIN_KEY) =>
    app.inject({ method, url, headers: { authorization: `token ${key}` } });

  before(async () => {
    fx = await startDeliveryApp('suppressions', { adminKey: ADMIN_KEY });
    ({ smtp, app } = fx);
    await handle(alice.created({ email: 'Alice@Example.com', verified: true, username: 'alice' }));
    await handle(alice.next('EmailAdded', { email: 'second@example.com' }));
    await settled((await handle(alice.apiKeyCreated('alice', apiKeySecretSha256(USER_KEY)))).deliveryIds[0]!);
  });

  after(() => fx?.close());

  it('550 5.1.1 lists the address; the next product email is suppressed without a connection; an admin lifts it and the next goes out', async () => {
    smtp.setScript(noMailbox);
    const bounced = (await handle(alice.apiKeyCreated('ci'))).deliveryIds[0]!;
    assert.equal((await settled(bounced)).status, 'failed');

    const entry = (await call('GET', '/suppressions/ALICE@example.com')).json();
    assert.equal(entry.address, 'alice@example.com');
    assert.equal(entry.active, true);
    assert.equal(entry.deliveryId, bounced);
    assert.equal(entry.emailKind, 'api-key-created');
    assert.equal(entry.responseCode, 550);
    assert.match(entry.reply, /5\.1\.1/);
    const list = (await call('GET', '/suppressions')).json();
    assert.deepEqual(
      list.suppressions.map((s: { address: string }) => s.address),
      ['alice@example.com'],
    );

    const sessions = smtp.sessions.length;
    const next = (await handle(alice.apiKeyCreated('deploy'))).deliveryIds[0]!;
    assert.deepEqual(await settled(next), {
      status: 'suppressed',
      suppression_reason: 'address-undeliverable',
    });
    const logged = (await call('GET', `/deliveries/${next}`)).json();
    assert.match(logged.notSentReason, /suppression list/);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(smtp.sessions.length, sessions, 'no connection for the suppressed email');

    const lifted = await call('DELETE', '/suppressions/alice@example.com');
    assert.equal(lifted.statusCode, 200);
    assert.equal(lifted.json().active, false);
    assert.equal(lifted.json().liftedBy, `admin:${fx.admin.userId}`);
    assert.equal((await call('DELETE', '/suppressions/alice@example.com')).statusCode, 404);
    assert.deepEqual((await call('GET', '/suppressions')).json().suppressions, []);
    assert.equal((await call('GET', '/suppressions?includeLifted=true')).json().suppressions.length, 1);

    const received = smtp.received.length;
    const after = (await handle(alice.apiKeyCreated('after'))).deliveryIds[0]!;
    assert.equal((await settled(after)).status, 'sent');
    assert.equal(smtp.received.length, received + 1);
  });

  it('a verification email to a listed address is still tried, and accepted, lifts the entry', async () => {
    smtp.setScript(noMailbox);
    const first = (await handle(alice.verificationRequested('second@example.com', 'v-1'))).deliveryIds[0]!;
    assert.equal((await settled(first)).status, 'failed');
    assert.equal((await call('GET', '/suppressions/second@example.com')).json().active, true);

    const again = (await handle(alice.verificationRequested('second@example.com', 'v-2'))).deliveryIds[0]!;
    assert.equal((await settled(again)).status, 'sent');
    const entry = (await call('GET', '/suppressions/second@example.com')).json();
    assert.equal(entry.active, false);
    assert.equal(entry.liftedBy, `delivered:${again}`);
    // Listed again by the next bounce: the entry is active with the new delivery.
    smtp.setScript(noMailbox);
    const third = (await handle(alice.verificationRequested('second@example.com', 'v-3'))).deliveryIds[0]!;
    assert.equal((await settled(third)).status, 'failed');
    const relisted = (await call('GET', '/suppressions/second@example.com')).json();
    assert.equal(relisted.active, true);
    assert.equal(relisted.deliveryId, third);
    assert.equal(relisted.liftedBy, null);
  });

  it('answers 401 without credentials, 403 for a non-admin, 404 for an address never listed', async () => {
    assert.equal((await app.inject({ method: 'GET', url: '/suppressions' })).statusCode, 401);
    assert.equal((await call('GET', '/suppressions', USER_KEY)).statusCode, 403);
    assert.equal((await call('DELETE', '/suppressions/second@example.com', USER_KEY)).statusCode, 403);
    const missing = await call('GET', '/suppressions/nobody@example.com');
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().field, 'address');
    assert.equal((await call('GET', '/suppressions?limit=0')).statusCode, 400);
  });
});
