import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabaseKind } from '@sitemail/testkit';
import {
  allEvents,
  basic,
  type Harness,
  noSmtpSite,
  PASSWORD,
  startHarness,
  userWithKey,
} from '../testing/harness.ts';

const db = testDatabaseKind();

/**
 * Issue 9 items 7 and 8: one address grammar (contracts' `parseEmailAddress`) for every address
 * accounts accepts, and no control or direction-override characters in text others see.
 */
describe(`input rules: addresses and user text (${db})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  before(async () => {
    h = await startHarness({ site: noSmtpSite });
    admin = await userWithKey(h, 'admin');
  });
  after(() => h.close());

  interface Request {
    method: 'POST' | 'PUT';
    url: string;
    headers?: Record<string, string>;
    payload: Record<string, unknown>;
  }
  /** `headers: {}` marks a route that needs the admin's key (admin is only known once the suite started). */
  const send = (request: Request, extra: Record<string, unknown>) =>
    h.app.inject({
      method: request.method,
      url: request.url,
      headers: request.headers ? { ...request.headers, ...admin.auth } : {},
      payload: { ...request.payload, ...extra },
    });
  /** Every route that takes an address from the caller, with `email` as given. */
  const addressRoutes = (email: string): [string, Request][] => [
    ['sign-up', { method: 'POST', url: '/sign-up', payload: { username: 'x1', email, password: PASSWORD } }],
    [
      'admin-created user',
      { method: 'POST', url: '/users', headers: {}, payload: { username: 'x2', email } },
    ],
    [
      'API-created user',
      {
        method: 'POST',
        url: '/users',
        headers: {},
        payload: { username: 'x3', email, origin: 'api' },
      },
    ],
    [
      'external account',
      {
        method: 'PUT',
        url: '/external-accounts/github/77',
        headers: {},
        payload: { username: 'x4', email },
      },
    ],
    ['add address', { method: 'POST', url: '/users/me/emails', headers: {}, payload: { email } }],
    ['invitation', { method: 'POST', url: '/invitations', headers: {}, payload: { email } }],
    ['reset request', { method: 'POST', url: '/password-reset-requests', payload: { email } }],
    ['set primary', { method: 'PUT', url: '/users/me/primary-email', headers: {}, payload: { email } }],
  ];

  const refused: [string, RegExp][] = [
    ['a@b', /fully qualified domain/],
    ['"a b"@example.com', /quoted local parts/],
    ['a@[127.0.0.1]', /address literals/],
    ['a\u0000b@example.com', /control character/],
  ];
  for (const [email, problem] of refused) {
    it(`refuses ${JSON.stringify(email)} with 400 naming email and the problem, on every route, writing nothing`, async () => {
      const before = (await allEvents(h)).length;
      for (const [route, request] of addressRoutes(email)) {
        const res = await send(request, {});
        assert.equal(res.statusCode, 400, `${route}: ${res.body}`);
        assert.equal(res.json().field, 'email', route);
        assert.match(res.json().detail, problem, route);
      }
      assert.equal((await allEvents(h)).length, before);
    });
  }

  it('accepts an internationalised domain, stores it in its A-label form, and finds it by either spelling', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'jurgen', email: 'Jurgen.Fan@Exämple.com', password: PASSWORD },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().primaryEmail, 'jurgen.fan@xn--exmple-cua.com');
    const key = await h.app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: { authorization: basic('jurgen.fan@exämple.com', PASSWORD) },
      payload: { name: 'idn' },
    });
    assert.equal(key.statusCode, 201, 'a login typed with the Unicode domain finds the account');
    const auth = { authorization: `token ${key.json().secret}` };
    const added = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails',
      headers: auth,
      payload: { email: 'jurgen@例え.jp' },
    });
    assert.equal(added.statusCode, 201);
    assert.ok(added.json().emails.some((e: { email: string }) => e.email === 'jurgen@xn--r8jz45g.jp'));
    const taken = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails',
      headers: admin.auth,
      payload: { email: 'jurgen@xn--r8jz45g.jp' },
    });
    assert.equal(taken.statusCode, 409, 'one address, one spelling');
    const removed = await h.app.inject({
      method: 'DELETE',
      url: `/users/me/emails/${encodeURIComponent('jurgen@例え.jp')}`,
      headers: auth,
    });
    assert.equal(removed.statusCode, 200);
  });

  const text: [string, string, Request][] = [
    [
      'displayName',
      'Alice\r\nBcc: x@example.com',
      {
        method: 'POST',
        url: '/sign-up',
        payload: { username: 't1', email: 't1@example.com', password: PASSWORD },
      },
    ],
    [
      'displayName',
      'Mallory\u202Egnp.exe',
      { method: 'POST', url: '/users', headers: {}, payload: { username: 't2', email: 't2@example.com' } },
    ],
    [
      'username',
      'bad\u0000name',
      { method: 'POST', url: '/sign-up', payload: { email: 't3@example.com', password: PASSWORD } },
    ],
    [
      'organization',
      'acme\r\nSubject: you won',
      { method: 'POST', url: '/invitations', headers: {}, payload: { email: 't4@example.com' } },
    ],
    [
      'organization',
      'acme\u0085',
      { method: 'POST', url: '/invitations', headers: {}, payload: { email: 't5@example.com' } },
    ],
    ['name', 'laptop\u2066', { method: 'POST', url: '/users/me/api-keys', headers: {}, payload: {} }],
    [
      'name',
      'lone \uD800 surrogate',
      { method: 'POST', url: '/users/me/api-keys', headers: {}, payload: {} },
    ],
  ];
  for (const [field, value, request] of text) {
    it(`refuses ${field} ${JSON.stringify(value)} with 400 naming the field`, async () => {
      const before = (await allEvents(h)).length;
      const res = await send(request, { [field]: value });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().field, field);
      assert.match(res.json().detail, /U\+[0-9A-F]{4}/);
      assert.equal((await allEvents(h)).length, before);
    });
  }

  it('refuses a NUL in an external account id (400 naming externalId)', async () => {
    const res = await h.app.inject({
      method: 'PUT',
      url: '/external-accounts/github/a%00b',
      headers: admin.auth,
      payload: { username: 'ext', email: 'ext@example.com' },
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().field, 'externalId');
  });

  const tooLong: [string, number, Request][] = [
    [
      'displayName',
      101,
      {
        method: 'POST',
        url: '/sign-up',
        payload: { username: 'l1', email: 'l1@example.com', password: PASSWORD },
      },
    ],
    [
      'organization',
      65,
      { method: 'POST', url: '/invitations', headers: {}, payload: { email: 'l2@example.com' } },
    ],
    ['name', 65, { method: 'POST', url: '/users/me/api-keys', headers: {}, payload: {} }],
  ];
  for (const [field, length, request] of tooLong) {
    it(`bounds ${field}: ${length - 1} characters pass validation, ${length} are a 400 naming it`, async () => {
      const res = await send(request, { [field]: 'é'.repeat(length) });
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json().field, field);
      const ok = await send(request, { [field]: 'é'.repeat(length - 1) });
      assert.ok([201, 202].includes(ok.statusCode), `${field} of ${length - 1}: ${ok.body}`);
    });
  }
});
