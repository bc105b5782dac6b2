import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { docsPlugin, problemsPlugin } from '@sitemail/service-kit';
import type { SiteConfig, SmtpOAuth2Config } from '@sitemail/site-config';
import { startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { generateKeyPair } from 'jose';
import { startTokenEndpoint, type TokenEndpoint } from '../../test/token-endpoint.ts';
import { createMailer } from '../smtp/mailer.ts';
import type { Mailer } from '../smtp/types.ts';
import { testEmailRoutes } from './test-email.ts';

const CLIENT = { clientID: 'app-42', clientSecret: 'cs-Saved-Zq9!', refreshToken: 'rt-saved-1//x' };
const MAILBOX = 'noreply@tenant.example';
const admin = { authorization: 'token admin-token' };

describe('POST /test-email with XOAUTH2 (real SMTP server, real token endpoint)', () => {
  let endpoint: TokenEndpoint;
  let otherEndpoint: TokenEndpoint;
  let smtp: TestSmtpServer;
  let saved: SiteConfig;
  let app: FastifyInstance;
  let shared: Mailer;
  let logText = '';
  let smtpAccepts = true;

  const oauth2 = (over: Partial<SmtpOAuth2Config> = {}): SmtpOAuth2Config => ({
    tokenURL: endpoint.url,
    clientID: CLIENT.clientID,
    clientSecret: CLIENT.clientSecret,
    scope: 'https://outlook.office365.com/.default',
    grant: 'client_credentials',
    ...over,
  });
  const unsaved = (o: object) => ({
    authentication: 'XOAUTH2',
    username: MAILBOX,
    host: smtp.host,
    port: smtp.port,
    oauth2: o,
  });
  const post = (body: unknown) =>
    app.inject({ method: 'POST', url: '/test-email', headers: admin, payload: body as object });

  before(async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    endpoint = await startTokenEndpoint(publicKey, CLIENT);
    otherEndpoint = await startTokenEndpoint(publicKey, CLIENT);
    smtp = await startSmtpServer({
      auth: 'XOAUTH2',
      acceptToken: (user, token) => smtpAccepts && endpoint.valid(token, user),
    });
    saved = {
      externalURL: 'https://sourcegraph.example.com',
      'email.address': MAILBOX,
      'email.smtp': {
        authentication: 'XOAUTH2',
        username: MAILBOX,
        oauth2: oauth2(),
        host: smtp.host,
        port: smtp.port,
        noVerifyTLS: false,
      },
      'auth.providers': [{ type: 'builtin' }],
    };
    const logs = new Writable({
      write(chunk, _enc, done) {
        logText += chunk.toString();
        done();
      },
    });
    app = Fastify({ logger: { level: 'trace', stream: logs } });
    await app.register(docsPlugin, { title: 'notifications', version: '0', description: 'test' });
    await app.register(problemsPlugin);
    shared = createMailer(() => saved, { logger: app.log });
    await app.register(testEmailRoutes, {
      siteConfig: () => saved,
      authenticate: async (r) =>
        r.headers.authorization === admin.authorization ? { userId: 'u-admin', siteAdmin: true } : null,
      mailer: shared,
      rateLimit: { max: 1000, timeWindowMs: 60_000 },
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await shared.close();
    await smtp.close();
    await endpoint.close();
    await otherEndpoint.close();
  });

  test('saved XOAUTH2 config: sent, the server saw AUTH XOAUTH2 for the mailbox', async () => {
    const res = await post({ to: 'a@b.example' });
    assert.equal(res.statusCode, 200, res.body);
    const got = await smtp.waitForEmails(1);
    assert.equal(got.at(-1)?.authMethod, 'XOAUTH2');
    assert.equal(got.at(-1)?.authenticatedUser, MAILBOX);
  });

  test('unsaved: REDACTED client secret toward the saved server and token endpoint takes the saved one', async () => {
    const before = smtp.received.length;
    const res = await post({ to: 'a@b.example', smtp: unsaved(oauth2({ clientSecret: 'REDACTED' })) });
    assert.equal(res.statusCode, 200, res.body);
    await smtp.waitForEmails(before + 1);
  });

  test('unsaved: REDACTED toward another token endpoint is a 400 naming the field, nothing requested', async () => {
    const requests = otherEndpoint.requests.length;
    const res = await post({
      to: 'a@b.example',
      smtp: unsaved(oauth2({ tokenURL: otherEndpoint.url, clientSecret: 'REDACTED' })),
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.equal(res.json().field, 'smtp.oauth2.clientSecret');
    assert.match(res.json().message, /only toward the saved server and the saved token endpoint/);
    assert.equal(otherEndpoint.requests.length, requests);
    assert.ok(!res.body.includes(CLIENT.clientSecret));
  });

  test('unsaved: a token URL that is not https (nor loopback http) is refused before any request', async () => {
    for (const tokenURL of ['http://idp.example/token', 'not a url']) {
      const res = await post({ to: 'a@b.example', smtp: unsaved(oauth2({ tokenURL })) });
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json().step, 'config');
      assert.match(res.json().message, /email\.smtp\.oauth2\.tokenURL must be an absolute https URL/);
    }
  });

  test('the failure says who refused: the token endpoint (invalid_client) or the SMTP server (535)', async () => {
    const wrong = 'cs-typed-wrong-77';
    const byEndpoint = await post({ to: 'a@b.example', smtp: unsaved(oauth2({ clientSecret: wrong })) });
    assert.equal(byEndpoint.statusCode, 502);
    const a = byEndpoint.json();
    assert.equal(a.step, 'auth');
    assert.equal(a.permanent, true);
    assert.match(
      a.message,
      /^Failed to send test email: mail: the token endpoint http:\/\/127\.0\.0\.1:\d+\/oauth2\/v2\.0\/token refused: invalid_client/,
    );
    assert.ok(!byEndpoint.body.includes(wrong));

    smtpAccepts = false;
    try {
      const bySmtp = await post({ to: 'a@b.example', smtp: unsaved(oauth2()) });
      assert.equal(bySmtp.statusCode, 502);
      const b = bySmtp.json();
      assert.equal(b.step, 'auth');
      assert.equal(b.responseCode, 535);
      assert.doesNotMatch(b.message, /token endpoint/);
      assert.match(b.message, /^Failed to send test email: mail: 535 /);
    } finally {
      smtpAccepts = true;
    }
    for (const secret of [wrong, CLIENT.clientSecret])
      assert.ok(!logText.includes(secret), 'no secret in the log');
  });
});
