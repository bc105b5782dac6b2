import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import { testDatabaseKind } from '@sitemail/testkit';
import { type Harness, startHarness } from '../testing/harness.ts';

/** Every route of the API, as services/accounts/README.md documents them. */
const documented = [
  'POST /sign-up',
  'POST /users',
  'PUT /external-accounts/{provider}/{externalId}',
  'GET /users/{userId}',
  'PUT /users/{userId}/site-admin',
  'DELETE /users/{userId}',
  'POST /users/{userId}/delete',
  'PUT /users/{userId}/password',
  'POST /users/{userId}/emails',
  'DELETE /users/{userId}/emails/{email}',
  'PUT /users/{userId}/primary-email',
  'POST /users/{userId}/emails/{email}/verification-requests',
  'PUT /users/{userId}/emails/{email}/verified',
  'POST /users/{userId}/api-keys',
  'GET /users/{userId}/api-keys',
  'DELETE /users/{userId}/api-keys/{keyId}',
  'POST /invitations',
  'GET /-/verify-email',
  'GET /password-reset',
  'GET /readyz',
  'POST /password-reset',
  'POST /password-reset-requests',
  'GET /-/invitation',
  'GET /healthz',
  'GET /metrics',
].sort();

interface Operation {
  parameters?: { in: string; name: string; schema?: unknown }[];
  requestBody?: { content: Record<string, { schema?: unknown }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

describe(`OpenAPI document (${testDatabaseKind()})`, () => {
  let h: Harness;
  let doc: { openapi: string; paths: Record<string, Record<string, Operation>> };
  before(async () => {
    h = await startHarness();
    const res = await h.app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    doc = res.json();
  });
  after(() => h.close());

  it('is a valid OpenAPI 3.1 document', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    assert.equal(result.valid, true, JSON.stringify(result.errors, null, 2));
    assert.equal(validator.version, '3.1');
  });

  it('the validator does catch a broken document (the check can fail)', async () => {
    const broken = structuredClone(doc) as unknown as {
      paths: Record<string, Record<string, { responses?: unknown }>>;
    };
    broken.paths['/sign-up']!.post!.responses = 'none';
    assert.equal((await new Validator().validate(broken)).valid, false);
  });

  it('lists exactly the documented routes', () => {
    const routes = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    assert.deepEqual(routes, documented);
  });

  it('every route has response schemas for every status, and request schemas where it takes input', () => {
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const name = `${method.toUpperCase()} ${path}`;
        const statuses = Object.keys(op.responses);
        assert.ok(
          statuses.some((s) => s.startsWith('2')),
          `${name} has a success response`,
        );
        for (const [status, response] of Object.entries(op.responses)) {
          if (status === '204') continue;
          const contents = Object.values(response.content ?? {});
          assert.ok(contents.length > 0, `${name} ${status} has content`);
          for (const c of contents) assert.ok(c.schema, `${name} ${status} has a schema`);
        }
        for (const param of path.match(/\{(\w+)\}/g) ?? []) {
          const p = op.parameters?.find((x) => x.in === 'path' && `{${x.name}}` === param);
          assert.ok(p?.schema, `${name} documents path parameter ${param}`);
        }
        if (['post', 'put'].includes(method) && !path.endsWith('/verification-requests')) {
          assert.ok(op.requestBody?.content['application/json']?.schema, `${name} has a request body schema`);
        }
        if (method !== 'get' || path === '/healthz') continue;
        if (path.includes('{'))
          assert.ok(statuses.includes('401') || path.startsWith('/-/'), `${name} documents 401`);
      }
    }
    const verify = doc.paths['/-/verify-email']?.get;
    assert.deepEqual(verify?.parameters?.map((p) => `${p.in}:${p.name}`).sort(), [
      'query:code',
      'query:email',
    ]);
    const signUp = doc.paths['/sign-up']?.post;
    assert.deepEqual(Object.keys(signUp?.responses ?? {}).sort(), ['201', '400', '403', '409', '429']);
    assert.ok(signUp?.responses['400']?.content?.['application/problem+json']?.schema);
  });

  it('serves the interactive docs page at /docs', async () => {
    const res = await h.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /text\/html/);
    assert.match(res.body, /swagger/i);
  });
});
