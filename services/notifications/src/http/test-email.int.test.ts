import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { docsPlugin, problemsPlugin } from '@sitemail/service-kit';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { createMailer } from '../smtp/mailer.ts';
import type { Mailer } from '../smtp/types.ts';
import { testEmailRoutes } from './test-email.ts';

const PASSWORD = 'S3cr3t-smtp-Pa55';

/** A real authenticate function: fixed tokens, as the service's projected API keys would resolve. */
async function authenticate(request: FastifyRequest) {
  const header = request.headers.authorization ?? '';
  if (header === 'token admin-token') return { userId: 'u-admin', siteAdmin: true };
  if (header === 'token user-token') return { userId: 'u-user', siteAdmin: false };
  return null;
}
const admin = { authorization: 'token admin-token' };

/** A problem body without its request id (a fresh one per request). */
function problemOf(body: Record<string, unknown>) {
  assert.equal(typeof body.requestId, 'string');
  const { requestId: _id, ...rest } = body;
  return rest;
}

describe('POST /test-email', () => {
  let server: TestSmtpServer;
  let other: TestSmtpServer;
  let saved: SiteConfig;
  let app: FastifyInstance;
  let sharedMailer: Mailer;
  let logText = '';

  const savedConfig = (over: Partial<SiteConfig> = {}): SiteConfig => ({
    externalURL: 'https://sourcegraph.example.com',
    'email.senderName': 'Example Instance',
    'email.address': 'from@example.com',
    'email.smtp': {
      authentication: 'PLAIN',
      username: 'admin-mail',
      password: PASSWORD,
      host: server.host,
      port: server.port,
      noVerifyTLS: false,
    },
    'auth.providers': [{ type: 'builtin' }],
    ...over,
  });

  const post = (body: unknown, headers: Record<string, string> = admin) =>
    app.inject({ method: 'POST', url: '/test-email', headers, payload: body as object });

  before(async () => {
    server = await startSmtpServer({
      auth: 'PLAIN',
      users: [{ username: 'admin-mail', password: PASSWORD }],
    });
    other = await startSmtpServer({ auth: 'PLAIN', users: [{ username: 'admin-mail', password: PASSWORD }] });
    saved = savedConfig();
    const logs = new Writable({
      write(chunk, _enc, done) {
        logText += chunk.toString();
        done();
      },
    });
    app = Fastify({ logger: { level: 'trace', stream: logs } });
    await app.register(docsPlugin, { title: 'notifications', version: '0', description: 'test' });
    await app.register(problemsPlugin);
    sharedMailer = createMailer(() => saved, { logger: app.log });
    await app.register(testEmailRoutes, {
      siteConfig: () => saved,
      authenticate,
      mailer: sharedMailer,
      now: () => new Date('2026-01-02T03:04:05.000Z'),
      // this suite sends more than the default 10 a minute; the limit is tested through the app
      rateLimit: { max: 1000, timeWindowMs: 60_000 },
    });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await sharedMailer.close();
    await server.close();
    await other.close();
  });

  test('401 without credentials or with unknown ones, 403 for a non-admin; nothing sent', async () => {
    const none = await post({ to: 'a@b.example' }, {});
    assert.equal(none.statusCode, 401);
    assert.deepEqual(problemOf(none.json()), {
      type: '/problems/unauthenticated',
      title: 'Unauthorized',
      status: 401,
      code: 'unauthenticated',
      detail: 'Authentication required',
      message: 'Authentication required',
    });
    assert.equal(none.headers['content-type'], 'application/problem+json; charset=utf-8');
    const bad = await post({ to: 'a@b.example' }, { authorization: 'token nope' });
    assert.equal(bad.statusCode, 401);
    const user = await post({ to: 'a@b.example' }, { authorization: 'token user-token' });
    assert.equal(user.statusCode, 403);
    assert.equal(user.json().message, 'Only site admins can send a test email');
    assert.equal(user.json().code, 'forbidden');
    // credentials are checked before the body: an anonymous caller cannot probe validation
    assert.equal((await post({ nonsense: true }, {})).statusCode, 401);
    assert.equal(server.received.length, 0);
  });

  test('success: the fixed text byte for byte, the test ID in subject, body and response', async () => {
    const before = server.received.length;
    const res = await post({ to: 'a@b.example' });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(
      body.message,
      'Sent test email to "a@b.example" successfully! Please check it was received.',
    );
    assert.match(body.testId, /^[0-9A-HJKMNP-TV-Z]{8}$/);
    assert.deepEqual(Object.keys(body).sort(), ['message', 'messageId', 'testId']);
    const got = (await server.waitForEmails(before + 1))[before];
    assert.ok(got);
    assert.equal(got.subject, `TEST: email sent from Example Instance [${body.testId}]`);
    assert.ok(got.subject?.startsWith('TEST: email sent from'));
    assert.ok(got.text?.includes(`Test ID: ${body.testId}`));
    assert.ok(got.html?.includes(body.testId));
    assert.equal(got.headers.get('x-sitemail-test-id'), body.testId);
    assert.equal(got.messageId, body.messageId);
    assert.deepEqual(got.envelope.to, ['a@b.example']);
    assert.equal(got.from, '"Example Instance" <from@example.com>');
    assert.equal(got.authenticatedUser, 'admin-mail');
  });

  test('the shared mailer stays open for the service after a test email', async () => {
    const before = server.received.length;
    assert.equal((await post({ to: 'a@b.example' })).statusCode, 200);
    await sharedMailer.send({ to: 'c@d.example', subject: 'after', text: 't', html: '<p>t</p>' });
    await server.waitForEmails(before + 2);
  });

  test('wrong password: 502 with the server reply, step auth, no secret', async () => {
    saved = savedConfig({ 'email.smtp': { ...savedConfig()['email.smtp']!, password: 'wrong-Pa55word' } });
    try {
      const res = await post({ to: 'a@b.example' });
      assert.equal(res.statusCode, 502);
      const body = res.json();
      assert.equal(body.message, 'Failed to send test email: mail: 535 5.7.8 Authentication failed');
      assert.equal(body.step, 'auth');
      assert.equal(body.smtpResponse, '535 5.7.8 Authentication failed');
      assert.equal(body.responseCode, 535);
      assert.equal(body.permanent, true);
      assert.match(body.testId, /^[0-9A-Z]{8}$/);
      assert.equal(body.code, 'smtp-failed');
      assert.equal(body.type, '/problems/smtp-failed');
      assert.ok(!res.body.includes('wrong-Pa55word'));
    } finally {
      saved = savedConfig();
    }
  });

  test('unreachable host: 502 "mail: connect ECONNREFUSED ..." at the connect step', async () => {
    const gone = await startSmtpServer({});
    const port = gone.port;
    await gone.close();
    saved = savedConfig({
      'email.smtp': { authentication: 'none', host: '127.0.0.1', port, noVerifyTLS: false },
    });
    try {
      const res = await post({ to: 'a@b.example' });
      assert.equal(res.statusCode, 502);
      const body = res.json();
      assert.equal(body.message, `Failed to send test email: mail: connect ECONNREFUSED 127.0.0.1:${port}`);
      assert.equal(body.step, 'connect');
      assert.equal(body.permanent, false);
      assert.equal(body.smtpResponse, undefined);
    } finally {
      saved = savedConfig();
    }
  });

  test('missing email.smtp or email.address: 422 with the product texts, step config', async () => {
    saved = { ...savedConfig(), 'email.smtp': undefined };
    try {
      const res = await post({ to: 'a@b.example' });
      assert.equal(res.statusCode, 422);
      assert.equal(
        res.json().message,
        'Failed to send test email: no SMTP server configured (in email.smtp)',
      );
      assert.equal(res.json().step, 'config');
      assert.equal(res.json().code, 'email-not-configured');
      saved = { ...savedConfig(), 'email.address': undefined };
      const noFrom = await post({ to: 'a@b.example' });
      assert.equal(noFrom.statusCode, 422);
      assert.equal(
        noFrom.json().message,
        'Failed to send test email: no "From" email address configured (in email.address)',
      );
      assert.equal(noFrom.json().step, 'config');
    } finally {
      saved = savedConfig();
    }
  });

  test('unsaved settings: sent with them (another server: the password typed again), nothing persisted or echoed', async () => {
    const before = JSON.stringify(saved);
    const onServer = server.received.length;
    const res = await post({
      to: 'a@b.example',
      smtp: {
        authentication: 'PLAIN',
        username: 'admin-mail',
        // REDACTED is refused toward another server than the saved one (application/test-email.int.test.ts)
        password: PASSWORD,
        host: other.host,
        port: other.port,
      },
      'email.address': 'unsaved@example.com',
      'email.senderName': 'Unsaved Name',
    });
    assert.equal(res.statusCode, 200, res.body);
    const { testId } = res.json();
    const [got] = await other.waitForEmails(1);
    assert.equal(got?.subject, `TEST: email sent from Unsaved Name [${testId}]`);
    assert.equal(got?.from, '"Unsaved Name" <unsaved@example.com>');
    assert.equal(got?.authenticatedUser, 'admin-mail');
    assert.deepEqual(
      other.authAttempts.map((a) => [a.username, a.success]),
      [['admin-mail', true]],
    );
    assert.equal(server.received.length, onServer, 'the saved server got nothing');
    assert.equal(JSON.stringify(saved), before, 'the saved config is unchanged');
    assert.ok(!res.body.includes(PASSWORD));

    // an unsaved wrong password fails, and is not echoed either
    const wrong = await post({
      to: 'a@b.example',
      smtp: { username: 'admin-mail', password: 'typo-Pa55', host: other.host, port: other.port },
    });
    assert.equal(wrong.statusCode, 502);
    assert.equal(wrong.json().message, 'Failed to send test email: mail: 535 5.7.8 Authentication failed');
    assert.ok(!wrong.body.includes('typo-Pa55'));
  });

  test('REDACTED with nothing saved is a 400 naming the field', async () => {
    saved = { ...savedConfig(), 'email.smtp': undefined };
    try {
      const res = await post({
        to: 'a@b.example',
        smtp: { host: other.host, port: other.port, password: 'REDACTED' },
      });
      assert.equal(res.statusCode, 400);
      const message = 'invalid "smtp.password": reads "REDACTED" but no value is saved for it';
      assert.deepEqual(problemOf(res.json()), {
        type: '/problems/invalid-input',
        title: 'Bad Request',
        status: 400,
        code: 'invalid-input',
        detail: message,
        field: 'smtp.password',
        message,
      });
    } finally {
      saved = savedConfig();
    }
  });

  test('invalid input: 400 with a message naming the field, nothing sent', async () => {
    const before = server.received.length + other.received.length;
    const cases: [unknown, string, RegExp][] = [
      [{}, 'to', /^missing field "to"$/],
      [{ to: 'a@b.example, c@d.example' }, 'to', /exactly one email address/],
      [{ to: 'a@b.example c@d.example' }, 'to', /exactly one email address/],
      [{ to: '"Eve" <a@b.example>' }, 'to', /exactly one email address/],
      [{ to: 'not-an-address' }, 'to', /exactly one email address/],
      [{ to: 'a@b.example\r\nBcc: victim@c.example' }, 'to', /line breaks \(header injection\)/],
      [{ to: 'a@b.example', cc: 'x@y.example' }, 'cc', /^unknown field "cc"$/],
      [
        { to: 'a@b.example', smtp: { host: 'h', port: 25, pasword: 'x' } },
        'smtp.pasword',
        /^unknown field "smtp.pasword"$/,
      ],
      [
        { to: 'a@b.example', smtp: { host: 'h', port: 0 } },
        'smtp.port',
        /^invalid "smtp.port": must be >= 1$/,
      ],
      [
        { to: 'a@b.example', smtp: { host: 'h', port: '25' } },
        'smtp.port',
        /^invalid "smtp.port": must be an integer$/,
      ],
      [{ to: 'a@b.example', smtp: { port: 25 } }, 'smtp.host', /^missing field "smtp.host"$/],
      [
        { to: 'a@b.example', smtp: { host: 'h', port: 25, authentication: 'GSSAPI' } },
        'smtp.authentication',
        /must be one of "PLAIN", "CRAM-MD5", "LOGIN", "XOAUTH2", "none"/,
      ],
      [
        { to: 'a@b.example', smtp: { host: 'h', port: 25, domain: 'evil\r\nRCPT TO:<x@y>' } },
        'smtp.domain',
        /not allowed/,
      ],
      [
        { to: 'a@b.example', 'email.senderName': 'Name\r\nBcc: x@y.example' },
        'email.senderName',
        /header injection/,
      ],
      [{ to: 'a@b.example', 'email.address': 'a@b.example, c@d.example' }, 'email.address', /exactly one/],
      [{ to: 42 }, 'to', /^invalid "to": must be a string$/],
    ];
    for (const [body, field, message] of cases) {
      const res = await post(body);
      assert.equal(res.statusCode, 400, `${JSON.stringify(body)} -> ${res.body}`);
      assert.equal(res.json().field, field, JSON.stringify(body));
      assert.match(res.json().message, message, JSON.stringify(body));
      assert.equal(res.json().detail, res.json().message);
      assert.equal(res.json().code, 'invalid-input');
    }
    const notJson = await app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { ...admin, 'content-type': 'application/json' },
      payload: '{"to":',
    });
    assert.equal(notJson.statusCode, 400);
    assert.equal(server.received.length + other.received.length, before);
  });

  test('OpenAPI: request body and every response status are documented', async () => {
    const doc = app.swagger() as unknown as {
      paths: Record<string, Record<string, { requestBody?: unknown; responses: object }>>;
    };
    const op = doc.paths['/test-email']?.post;
    assert.ok(op, 'route documented');
    assert.ok(op.requestBody);
    assert.deepEqual(Object.keys(op.responses).sort(), [
      '200',
      '400',
      '401',
      '403',
      '422',
      '429',
      '500',
      '502',
    ]);
    const responses = op.responses as Record<string, { description?: string; content?: object }>;
    assert.match(responses['502']?.description ?? '', /SMTP server/);
    assert.match(responses['422']?.description ?? '', /email\.smtp/);
    for (const [status, r] of Object.entries(responses)) assert.ok(r.content, `${status} has a body schema`);
  });

  test('no secret in any log line', () => {
    assert.ok(logText.length > 0);
    for (const secret of [
      PASSWORD,
      'wrong-Pa55word',
      'typo-Pa55',
      Buffer.from(`\0admin-mail\0${PASSWORD}`).toString('base64'),
    ]) {
      assert.ok(!logText.includes(secret), `log contains ${secret.slice(0, 3)}…`);
    }
  });
});
