import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import { type Database, openDatabase } from '@sitemail/db';
import { serverOptions } from '@sitemail/service-kit';
import { type TestDatabase, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify';
import { Stream, testLinkKey } from '../../test/events.ts';
import { notificationsDb, siteFor } from '../../test/harness.ts';
import { notificationsApp } from '../app.ts';
import { handleEvent } from '../application/handle-event.ts';

const ADMIN_KEY = 'sitemail_problems-admin-0123456789abcdefghijklmnopqrstuvw';
const USER_KEY = 'sitemail_problems-user-0123456789abcdefghijklmnopqrstuvwx';

/** The members every error body of both services has (accounts answers the same shape). */
function assertProblem(r: LightMyRequestResponse, status: number, code: string) {
  assert.equal(r.statusCode, status, r.body);
  assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
  const body = r.json();
  assert.equal(body.type, `/problems/${code}`);
  assert.equal(body.title.length > 0, true);
  assert.equal(body.status, status);
  assert.equal(body.code, code);
  assert.equal(typeof body.detail, 'string');
  assert.equal(body.requestId, r.headers['x-request-id']);
  const standard = ['type', 'title', 'status', 'code', 'detail', 'field', 'requestId'];
  return { body, extra: Object.keys(body).filter((k) => !standard.includes(k)) };
}

describe(`notifications errors are the service kit's problem+json, as accounts' (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  const admin = new Stream();
  const user = new Stream();

  const build = async (database: Database) => {
    const a = Fastify(serverOptions({ logger: false }));
    await a.register(notificationsApp, {
      db: database,
      siteConfig: () => siteFor(undefined),
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await a.ready();
    return a;
  };
  const get = (url: string, authorization?: string, on = app) =>
    on.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });

  before(async () => {
    db = await notificationsDb('problems');
    const site = siteFor(undefined);
    const now = new Date();
    for (const e of [
      admin.created({ email: 'root@example.com', verified: true, siteAdmin: true, username: 'root' }),
      admin.apiKeyCreated('admin', apiKeySecretSha256(ADMIN_KEY)),
      user.created({ email: 'bob@example.com', verified: true, username: 'bob' }),
      user.apiKeyCreated('bob', apiKeySecretSha256(USER_KEY)),
    ]) {
      await handleEvent(db, e, site, now);
    }
    app = await build(db);
  });
  after(async () => {
    await app?.close();
    await db?.close();
  });

  it('400, 401, 403 and 404 share one body shape; 401 carries the challenge', async () => {
    const bad = assertProblem(await get('/deliveries?limit=0', `token ${ADMIN_KEY}`), 400, 'invalid-input');
    assert.equal(bad.body.field, 'limit');
    assert.deepEqual(bad.extra, []);

    const anonymous = await get('/deliveries');
    assert.deepEqual(assertProblem(anonymous, 401, 'unauthenticated').extra, []);
    assert.match(String(anonymous.headers['www-authenticate']), /token realm=".*", Bearer realm=/);
    assertProblem(await get('/deliveries', 'Bearer sitemail_nobody'), 401, 'unauthenticated');
    assertProblem(await get('/deliveries', `Basic ${btoa('root:pw')}`), 401, 'unauthenticated');
    assertProblem(await get('/deliveries', `token ${ADMIN_KEY} extra`), 401, 'unauthenticated');

    assert.deepEqual(
      assertProblem(await get('/deliveries', `token ${USER_KEY}`), 403, 'forbidden').extra,
      [],
    );
    const missing = assertProblem(
      await get('/deliveries/00000000-0000-4000-8000-000000000000', `token ${ADMIN_KEY}`),
      404,
      'not-found',
    );
    assert.equal(missing.body.field, 'id');
    assertProblem(await get('/no/such/route'), 404, 'no-route');
  });

  it('numbers and text the database cannot hold are a 400 naming the parameter, not a 500', async () => {
    const admin = `token ${ADMIN_KEY}`;
    const cases: [string, string][] = [
      // one past int64's maximum: seq is a bigint
      ['/deliveries?cursor=9223372036854775808', 'cursor'],
      ['/deliveries?cursor=9999999999999999999', 'cursor'],
      ['/deliveries?cursor=-1', 'cursor'],
      ['/deliveries?cursor=1.5', 'cursor'],
      ['/deliveries?limit=99999999999999999999', 'limit'],
      ['/deliveries?limit=1.5', 'limit'],
      ['/deliveries?limit=-1', 'limit'],
      ['/deliveries?limit=', 'limit'],
      // Postgres text holds no NUL
      ['/deliveries?address=a%00b@example.com', 'address'],
      ['/deliveries?userId=00000000-0000-4000-8000-00000000000g', 'userId'],
      ['/deliveries?eventId=00000000-0000-4000-8000-0000000000000', 'eventId'],
      ['/deliveries/00000000-0000-4000-8000-00000000000%00', 'id'],
    ];
    for (const [url, field] of cases) {
      const { body } = assertProblem(await get(url, admin), 400, 'invalid-input');
      assert.equal(body.field, field, url);
      assert.match(body.detail, new RegExp(field), url);
    }
    // The largest cursor there can be is still a page (empty or not), not an error.
    assert.equal((await get('/deliveries?cursor=9223372036854775807', admin)).statusCode, 200);
  });

  it('/test-email answers the same shape, keeping its documented message', async () => {
    const post = (authorization?: string, payload: object = { to: 'a@b.example' }) =>
      app.inject({
        method: 'POST',
        url: '/test-email',
        headers: authorization ? { authorization } : {},
        payload,
      });
    const cases: [LightMyRequestResponse, number, string, string][] = [
      [await post(), 401, 'unauthenticated', 'Authentication required'],
      [await post(`Bearer ${USER_KEY}`), 403, 'forbidden', 'Only site admins can send a test email'],
      [await post(`Bearer ${ADMIN_KEY}`, { to: 'x' }), 400, 'invalid-input', 'invalid "to"'],
    ];
    for (const [r, status, code, message] of cases) {
      const { body, extra } = assertProblem(r, status, code);
      assert.deepEqual(extra, ['message']);
      assert.ok(body.message.startsWith(message), body.message);
    }
    // Fastify's own refusal (malformed JSON) is answered by the kit; the route still adds `message`.
    const malformed = await app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      payload: '{"to":',
    });
    const parsed = assertProblem(malformed, 400, 'fst_err_ctp_invalid_json_body');
    assert.deepEqual(parsed.extra, ['message']);
  });

  it('Authorization: Bearer <key> and token <key> both work, in any case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'token', 'Token']) {
      const r = await get('/deliveries', `${scheme} ${ADMIN_KEY}`);
      assert.equal(r.statusCode, 200, `${scheme}: ${r.body}`);
    }
  });

  it('a 500 (the database closed under the app) is the same shape and shows nothing internal', async () => {
    // Its own database (PGlite: its own instance, not the process's shared one), so closing it
    // really leaves the app without one.
    const url = process.env.DATABASE_URL;
    const lost = await openDatabase(url ? { url, schema: `problems_closed_${process.pid}` } : {});
    const broken = await build(lost);
    try {
      const ready = await get('/readyz', undefined, broken);
      assert.equal(ready.statusCode, 200, ready.body);
      await lost.close();
      const r = await get('/deliveries', `token ${ADMIN_KEY}`, broken);
      const { body, extra } = assertProblem(r, 500, 'internal');
      assert.deepEqual(extra, []);
      assert.equal(body.detail, `internal error; quote request id ${body.requestId} when reporting it`);
      const notReady = await get('/readyz', undefined, broken);
      assert.equal(notReady.statusCode, 503);
      assert.deepEqual(notReady.json().checks.database, {
        ok: false,
        reason: 'the database does not answer',
      });
      assert.deepEqual(notReady.json().checks.siteConfig, { ok: true });
      assert.equal((await get('/healthz', undefined, broken)).statusCode, 200);
    } finally {
      await broken.close();
      if (url) await db.query(`DROP SCHEMA IF EXISTS problems_closed_${process.pid} CASCADE`);
    }
  });

  it('every answer, the docs included, carries the security headers', async () => {
    const answers = [
      await get('/deliveries', `token ${ADMIN_KEY}`),
      await get('/deliveries'),
      await get('/healthz'),
      await get('/openapi.json'),
      await get('/docs/'),
      await get('/docs'),
    ];
    for (const r of answers) {
      assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    assert.match(String(answers[0]!.headers['content-security-policy']), /default-src 'none'/);
    const ui = answers[4]!;
    assert.equal(ui.statusCode, 200);
    assert.match(ui.headers['content-type'] as string, /text\/html/);
    assert.match(String(ui.headers['content-security-policy']), /script-src 'self'/);
  });
});
