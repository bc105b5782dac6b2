import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyInstance } from 'fastify';
import Type from 'typebox';
import { apiKeyChallenge, parseAuthorization } from './authorization.ts';
import { docsPlugin } from './docs.ts';
import { healthPlugin } from './health.ts';
import { HttpProblem, problemsPlugin, sendProblem } from './problems.ts';
import { securityHeadersPlugin, serverOptions } from './server.ts';

class Refusal extends Error {
  constructor(readonly refusal: string) {
    super(`refused: ${refusal}`);
  }
}

let databaseUp = false;

async function build(): Promise<FastifyInstance> {
  const app = Fastify(serverOptions({ logger: false, bodyLimit: 1024 }));
  app.setValidatorCompiler(TypeBoxValidatorCompiler);
  await app.register(securityHeadersPlugin);
  await app.register(problemsPlugin, {
    wwwAuthenticate: apiKeyChallenge({ realm: 'test' }),
    toProblem: (err) =>
      err instanceof Refusal ? { status: 409, code: err.refusal, detail: err.message } : undefined,
  });
  await app.register(docsPlugin, { title: 'kit test', version: '1.0.0', description: 'A test service' });
  await app.register(healthPlugin, {
    timeoutMs: 200,
    checks: {
      database: async () => (databaseUp ? true : 'database unreachable'),
      bus: async () => {},
      hangs: async () => (databaseUp ? true : new Promise(() => {})),
    },
  });
  app.post(
    '/things',
    {
      schema: {
        body: Type.Object(
          { email: Type.String(), size: Type.Optional(Type.Integer({ minimum: 1 })) },
          { additionalProperties: false },
        ),
      },
    },
    async () => ({ ok: true }),
  );
  app.get('/private', async (request) => {
    const auth = parseAuthorization(request.headers.authorization);
    if (auth.kind !== 'apiKey' || auth.key !== 'sk_good')
      throw new HttpProblem({ status: 401, code: 'unauthenticated', detail: 'an API key is required' });
    return { ok: true };
  });
  app.get('/admin', async () => {
    throw new HttpProblem({ status: 403, code: 'forbidden', detail: 'site admins only' });
  });
  app.get('/refused', async () => {
    throw new Refusal('already-invited');
  });
  app.get('/broken', async () => {
    throw new Error('relation "users" does not exist SELECT * FROM users');
  });
  app.get('/limited', async () => {
    throw Object.assign(new Error('Rate limit exceeded'), { statusCode: 429 });
  });
  app.get('/test-email', async (_request, reply) =>
    sendProblem(reply, {
      status: 502,
      code: 'send-failed',
      detail: 'mail: refused',
      extra: { message: 'Failed to send test email: mail: refused' },
    }),
  );
  return app;
}

const shape = (body: Record<string, unknown>) =>
  Object.keys(body)
    .filter((k) => k !== 'field')
    .sort();
const standard = ['code', 'detail', 'requestId', 'status', 'title', 'type'];

describe('problems, health, docs and headers on one app', () => {
  let app: FastifyInstance;
  before(async () => {
    app = await build();
  });
  after(() => app.close());

  it('answers 400, 401, 403, 404, 409, 413 and 500 with one problem+json shape', async () => {
    const cases = [
      {
        req: { method: 'POST' as const, url: '/things', payload: { size: 2 } },
        status: 400,
        code: 'invalid-input',
      },
      { req: { method: 'GET' as const, url: '/private' }, status: 401, code: 'unauthenticated' },
      { req: { method: 'GET' as const, url: '/admin' }, status: 403, code: 'forbidden' },
      { req: { method: 'GET' as const, url: '/nope?code=secret' }, status: 404, code: 'no-route' },
      { req: { method: 'GET' as const, url: '/refused' }, status: 409, code: 'already-invited' },
      {
        req: { method: 'POST' as const, url: '/things', payload: { email: 'x'.repeat(2000) } },
        status: 413,
        code: 'fst_err_ctp_body_too_large',
      },
      { req: { method: 'GET' as const, url: '/limited' }, status: 429, code: 'rate-limited' },
      { req: { method: 'GET' as const, url: '/broken' }, status: 500, code: 'internal' },
    ];
    for (const c of cases) {
      const res = await app.inject(c.req);
      assert.equal(res.statusCode, c.status, c.req.url);
      assert.match(String(res.headers['content-type']), /^application\/problem\+json/, c.req.url);
      const body = res.json();
      assert.deepEqual(shape(body), standard, c.req.url);
      assert.equal(body.status, c.status);
      assert.equal(body.code, c.code);
      assert.equal(body.type, `/problems/${c.code}`);
      assert.equal(body.requestId, res.headers['x-request-id']);
    }
  });

  it('names the field: required, unknown, invalid', async () => {
    const post = (payload: unknown) =>
      app.inject({ method: 'POST', url: '/things', payload: payload as object });
    assert.deepEqual((({ field, detail }) => ({ field, detail }))((await post({})).json()), {
      field: 'email',
      detail: 'email is required',
    });
    const unknown = (await post({ email: 'a', colour: 'red' })).json();
    assert.equal(unknown.field, 'colour');
    assert.equal(unknown.detail, 'colour is not a known field');
    const invalid = (await post({ email: 'a', size: 0 })).json();
    assert.equal(invalid.field, 'size');
    assert.match(invalid.detail, /^size must be >= 1/);
  });

  it('passes Fastify client errors through with their status (bad JSON, wrong media type)', async () => {
    const bad = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/json' },
      payload: '{"email":',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().status, 400);
    const media = await app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    assert.equal(media.statusCode, 415);
    assert.equal(media.json().title, 'Unsupported Media Type');
  });

  it('a 500 tells nothing internal and quotes the request id', async () => {
    const res = await app.inject({ method: 'GET', url: '/broken', headers: { 'x-request-id': 'req-42' } });
    assert.equal(res.json().detail, 'internal error; quote request id req-42 when reporting it');
    for (const leak of ['relation', 'SELECT', 'users']) assert.ok(!res.body.includes(leak), leak);
  });

  it('a 401 carries the challenge; a Bearer key is accepted', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/private',
      headers: { authorization: 'token wrong' },
    });
    assert.equal(res.headers['www-authenticate'], 'token realm="test", Bearer realm="test"');
    const ok = await app.inject({
      method: 'GET',
      url: '/private',
      headers: { authorization: 'Bearer sk_good' },
    });
    assert.equal(ok.statusCode, 200);
  });

  it('a problem may carry documented extra members', async () => {
    const body = (await app.inject({ method: 'GET', url: '/test-email' })).json();
    assert.equal(body.message, 'Failed to send test email: mail: refused');
    assert.equal(body.code, 'send-failed');
    assert.equal(body.title, 'Bad Gateway');
  });

  it('keeps a safe x-request-id and replaces an unsafe one', async () => {
    const kept = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    assert.equal(kept.headers['x-request-id'], 'abc-123');
    const replaced = await app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'a b\nc' },
    });
    assert.match(String(replaced.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  it('liveness is trivial; readiness is 503 naming each failing check, then 200', async () => {
    const live = await app.inject({ method: 'GET', url: '/healthz' });
    assert.deepEqual(live.json(), { status: 'ok' });
    databaseUp = false;
    const down = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(down.statusCode, 503);
    assert.deepEqual(down.json(), {
      status: 'not-ready',
      checks: {
        database: { ok: false, reason: 'database unreachable' },
        bus: { ok: true },
        hangs: { ok: false, reason: 'no answer within 200 ms' },
      },
    });
    databaseUp = true;
    const up = await app.inject({ method: 'GET', url: '/readyz' });
    assert.equal(up.statusCode, 200);
    assert.deepEqual(up.json(), {
      status: 'ready',
      checks: { database: { ok: true }, bus: { ok: true }, hangs: { ok: true } },
    });
  });

  it('serves the OpenAPI document with the API-key scheme (token and Bearer)', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.equal(doc.openapi, '3.1.0');
    assert.equal(doc.info.title, 'kit test');
    assert.match(doc.components.securitySchemes.apiKey.description, /token <API key>.*Bearer <API key>/);
    assert.ok(doc.paths['/readyz'].get.responses['503']);
  });

  it('sets security headers; /docs loads under a CSP that lets swagger-ui run', async () => {
    const api = await app.inject({ method: 'GET', url: '/healthz' });
    assert.match(String(api.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
    assert.equal(api.headers['x-frame-options'], 'DENY');
    const docs = await app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger-ui-bundle\.js/);
    const csp = String(docs.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    // Every script the page names is served from /docs itself, which the policy allows.
    for (const [, src] of docs.body.matchAll(/<script src="([^"]+)"/g)) {
      const url = new URL(src!, 'http://x/docs/').pathname;
      assert.equal((await app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
    assert.ok(!/<script>/.test(docs.body), 'no inline script, which the policy would block');
  });
});
