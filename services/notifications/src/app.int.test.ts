import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { Stream, testLinkKey } from '../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../test/harness.ts';
import { notificationsApp } from './app.ts';
import { handleEvent } from './application/handle-event.ts';

const ADMIN_KEY = 'sitemail_admin-secret-0123456789abcdefghijklmnopqrstuvw';
const USER_KEY = 'sitemail_user-secret-0123456789abcdefghijklmnopqrstuvwx';
const REVOKED_KEY = 'sitemail_revoked-secret-0123456789abcdefghijklmnopqrstu';

describe(`notifications HTTP API (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let app: FastifyInstance;
  const admin = new Stream();
  const user = new Stream();
  const ids: Record<string, string> = {};

  const get = (url: string, key?: string) =>
    app.inject({ method: 'GET', url, headers: key ? { authorization: `token ${key}` } : {} });

  before(async () => {
    db = await notificationsDb('http');
    // The first email the server sees is refused for good; the others go through.
    smtp = await startSmtpServer({
      script: [{ stage: 'rcpt', code: 550, times: 1, message: '550 5.1.1 no such mailbox' }],
    });
    const site = siteFor(smtp);
    const now = new Date();
    const handle = async (e: Parameters<typeof handleEvent>[1]) => handleEvent(db, e, site, now);
    await handle(
      admin.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
    );
    ids.adminKey = (await handle(admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY))))
      .deliveryIds[0]!;
    const revoked = admin.apiKeyCreated('old key', apiKeySecretSha256(REVOKED_KEY));
    ids.oldKey = (await handle(revoked)).deliveryIds[0]!;
    await handle(admin.next('ApiKeyRevoked', { keyId: revoked.data.keyId, revokedBy: admin.userId }));
    await handle(user.created({ email: 'bob@example.com', verified: false, username: 'bob' }));
    ids.userKey = (await handle(user.apiKeyCreated('bob key', apiKeySecretSha256(USER_KEY)))).deliveryIds[0]!;
    ids.verification = (await handle(user.verificationRequested('bob@example.com'))).deliveryIds[0]!;

    // As startNotifications builds it: unknown fields are refused, not silently dropped.
    app = Fastify({ logger: false, ajv: { customOptions: { removeAdditional: false } } });
    await app.register(notificationsApp, {
      db,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      worker: { pollIntervalMs: 50, poolSize: 1, backoff: { baseMs: 50 } },
    });
    await app.ready();
    await eventually(async () => {
      const { rows } = await db.query<{ n: string }>(
        "SELECT count(*) AS n FROM deliveries WHERE status IN ('sent', 'failed')",
      );
      return Number(rows[0]!.n) === 3 ? true : undefined;
    });
  });

  after(async () => {
    await app?.close();
    await smtp?.close();
    await db?.close();
  });

  it('answers 401 without or with unknown or revoked credentials, 403 for a non-admin; token and Bearer alike', async () => {
    for (const r of [
      await get('/deliveries'),
      await get('/deliveries', 'sitemail_unknown'),
      await get('/deliveries', REVOKED_KEY),
      await app.inject({
        method: 'GET',
        url: '/deliveries',
        headers: { authorization: `Bearer ${REVOKED_KEY}` },
      }),
    ]) {
      assert.equal(r.statusCode, 401);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
      assert.doesNotMatch(r.body, /secret/);
    }
    // The same key as `Bearer <key>` (accounts takes both schemes, so notifications does too).
    for (const scheme of ['Bearer', 'bearer', 'token']) {
      const r = await app.inject({
        method: 'GET',
        url: '/deliveries',
        headers: { authorization: `${scheme} ${ADMIN_KEY}` },
      });
      assert.equal(r.statusCode, 200, scheme);
    }
    const bearerUser = await app.inject({
      method: 'GET',
      url: '/deliveries',
      headers: { authorization: `Bearer ${USER_KEY}` },
    });
    assert.equal(bearerUser.statusCode, 403);
    const forbidden = await get('/deliveries', USER_KEY);
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().title, 'Forbidden');
    const testEmail = await app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `token ${USER_KEY}` },
      payload: { to: 'a@b.example' },
    });
    assert.equal(testEmail.statusCode, 403);
  });

  it('lists every delivery newest first, suppressed ones with the reason they were not sent', async () => {
    const r = await get('/deliveries', ADMIN_KEY);
    assert.equal(r.statusCode, 200);
    const list = r.json().deliveries as {
      id: string;
      status: string;
      suppressionReason: string | null;
      notSentReason: string | null;
    }[];
    assert.deepEqual(
      list.map((d) => d.id),
      [ids.verification, ids.userKey, ids.oldKey, ids.adminKey],
    );
    const suppressed = list.find((d) => d.id === ids.userKey)!;
    assert.equal(suppressed.status, 'suppressed');
    assert.equal(suppressed.suppressionReason, 'primary-unverified');
    assert.equal(suppressed.notSentReason, "the user's primary email address is not verified");
  });

  it('filters by user, address (any case), status and event, and pages with a cursor', async () => {
    const ofUser = (await get(`/deliveries?userId=${user.userId}`, ADMIN_KEY)).json().deliveries;
    assert.deepEqual(
      ofUser.map((d: { id: string }) => d.id),
      [ids.verification, ids.userKey],
    );
    const byAddress = (await get('/deliveries?address=ROOT@example.com', ADMIN_KEY)).json().deliveries;
    assert.deepEqual(
      byAddress.map((d: { id: string }) => d.id),
      [ids.oldKey, ids.adminKey],
    );
    const suppressed = (await get('/deliveries?status=suppressed', ADMIN_KEY)).json().deliveries;
    assert.deepEqual(
      suppressed.map((d: { id: string }) => d.id),
      [ids.userKey],
    );
    const detail = (await get(`/deliveries/${ids.userKey}`, ADMIN_KEY)).json();
    const byEvent = (await get(`/deliveries?eventId=${detail.eventId}`, ADMIN_KEY)).json().deliveries;
    assert.deepEqual(
      byEvent.map((d: { id: string }) => d.id),
      [ids.userKey],
    );
    const first = (await get('/deliveries?limit=3', ADMIN_KEY)).json();
    assert.equal(first.deliveries.length, 3);
    assert.ok(first.nextCursor);
    const second = (await get(`/deliveries?limit=3&cursor=${first.nextCursor}`, ADMIN_KEY)).json();
    assert.deepEqual(
      second.deliveries.map((d: { id: string }) => d.id),
      [ids.adminKey],
    );
    assert.equal(second.nextCursor, undefined);
  });

  it('shows one delivery with its attempts: a 550 failure with the step and the server reply', async () => {
    const details = await Promise.all(
      [ids.adminKey, ids.oldKey, ids.verification].map(async (id) =>
        (await get(`/deliveries/${id}`, ADMIN_KEY)).json(),
      ),
    );
    assert.deepEqual(details.map((d) => d.status).sort(), ['failed', 'sent', 'sent']);
    const failed = details.find((d) => d.status === 'failed');
    const sent = details.find((d) => d.status === 'sent');
    assert.equal(failed.attempts.length, 1);
    assert.equal(failed.attempts[0].outcome, 'failed');
    assert.equal(failed.attempts[0].responseCode, 550);
    assert.equal(failed.attempts[0].errorStep, 'envelope');
    assert.match(failed.notSentReason, /550/);
    assert.equal(sent.attempts[0].outcome, 'sent');
    assert.match(sent.attempts[0].smtpResponse, /^250/);
    assert.equal(sent.notSentReason, null);
    assert.ok(sent.sentAt);
  });

  it("shows the queue's state and each delivery's give-up time (its link's expiry for a verification)", async () => {
    const queue = await get('/deliveries/queue', ADMIN_KEY);
    assert.equal(queue.statusCode, 200);
    assert.deepEqual(queue.json(), { state: 'sending', summary: 'sending' });
    assert.equal((await get('/deliveries/queue', USER_KEY)).statusCode, 403);
    const list = (await get('/deliveries', ADMIN_KEY)).json();
    assert.equal(list.queue, 'sending');
    const verification = (await get(`/deliveries/${ids.verification}`, ADMIN_KEY)).json();
    assert.equal(verification.status, 'sent');
    // The sooner of its maximum age (120 h by default) and its link's expiry.
    const { rows } = await db.query<{ expires: string; created_at: Date }>(
      "SELECT message->'link'->>'expiresAt' AS expires, created_at FROM deliveries WHERE id = $1",
      [ids.verification],
    );
    const maxAge = new Date(rows[0]!.created_at).getTime() + 120 * 3_600_000;
    const expected = Math.min(maxAge, new Date(rows[0]!.expires).getTime());
    assert.equal(verification.giveUpAt, new Date(expected).toISOString());
    // The 550 5.1.1 of the first email: final, and the address's problem.
    const details = await Promise.all(
      [ids.adminKey, ids.oldKey, ids.verification].map(async (id) =>
        (await get(`/deliveries/${id}`, ADMIN_KEY)).json(),
      ),
    );
    const failed = details.find((d) => d.status === 'failed');
    assert.equal(failed.failureReason, 'rejected');
    assert.equal(failed.replyScope, 'address');
    assert.equal(failed.attempts[0].replyScope, 'address');
  });

  it('answers 404 for an unknown delivery and 400 naming the field for bad input, as problem+json', async () => {
    const missing = await get('/deliveries/00000000-0000-4000-8000-000000000000', ADMIN_KEY);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().status, 404);
    const bad = await get('/deliveries?status=lost', ADMIN_KEY);
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().detail, /status/);
    const badLimit = await get('/deliveries?limit=0', ADMIN_KEY);
    assert.equal(badLimit.statusCode, 400);
    assert.match(badLimit.json().detail, /limit/);
    const unknown = await get('/deliveries?colour=red', ADMIN_KEY);
    assert.equal(unknown.statusCode, 400);
    assert.equal(unknown.json().detail, 'querystring colour is not a known field');
    assert.equal(unknown.json().field, 'colour');
    const badId = await get('/deliveries/nope', ADMIN_KEY);
    assert.equal(badId.statusCode, 400);
    assert.match(badId.json().detail, /id/);
  });

  it('serves an OpenAPI document where every route has request and response schemas, and the docs UI', async () => {
    const doc = (await get('/openapi.json')).json();
    assert.equal(doc.openapi, '3.1.0');
    const paths = Object.keys(doc.paths).sort();
    assert.deepEqual(paths, [
      '/-/unsubscribe/{token}',
      '/bounces',
      '/deliveries',
      '/deliveries/queue',
      '/deliveries/{id}',
      '/healthz',
      '/metrics',
      '/readyz',
      '/suppressions',
      '/suppressions/{address}',
      '/test-email',
    ]);
    assert.ok(doc.paths['/deliveries'].get.parameters.some((p: { name: string }) => p.name === 'status'));
    assert.ok(
      doc.paths['/deliveries/{id}'].get.responses['200'].content['application/json'].schema.properties
        .attempts,
    );
    assert.ok(doc.paths['/test-email'].post.requestBody.content['application/json'].schema.properties.to);
    for (const [path, ops] of Object.entries(
      doc.paths as Record<string, Record<string, { responses: object }>>,
    )) {
      for (const op of Object.values(ops)) assert.ok(Object.keys(op.responses).length > 0, path);
    }
    const ui = await app.inject({ method: 'GET', url: '/docs' });
    assert.ok(ui.statusCode === 200 || ui.statusCode === 302, String(ui.statusCode));
  });

  it('hides the internals of a 5xx', async () => {
    const broken = Fastify({ logger: false });
    const closedDb = await notificationsDb('http_closed');
    await broken.register(notificationsApp, {
      db: closedDb,
      siteConfig: () => siteFor(smtp),
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await broken.ready();
    await closedDb.query('DROP TABLE recipient_api_keys CASCADE');
    const r = await broken.inject({
      method: 'GET',
      url: '/deliveries',
      headers: { authorization: `token ${ADMIN_KEY}` },
    });
    await broken.close();
    await closedDb.close();
    assert.equal(r.statusCode, 500);
    const body = r.json();
    assert.deepEqual(body, {
      type: '/problems/internal',
      title: 'Internal Server Error',
      status: 500,
      code: 'internal',
      detail: `internal error; quote request id ${body.requestId} when reporting it`,
      requestId: body.requestId,
    });
    assert.doesNotMatch(r.body, /recipient_api_keys|relation|SELECT/i);
  });
});
