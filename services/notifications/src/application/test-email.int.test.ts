import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { apiKeySecretSha256 } from '@sitemail/contracts';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { Stream, testLinkKey } from '../../test/events.ts';
import { notificationsDb } from '../../test/harness.ts';
import { notificationsApp } from '../app.ts';
import { handleEvent } from './handle-event.ts';

/**
 * `POST /test-email` attacked as issue 9 describes it, through the real app: saved credentials
 * sent elsewhere, the route used as a port scanner, addresses outside the product grammar.
 */

const PASSWORD = 'S3cr3t-smtp-Pa55-test-email';
const key = (n: number) => `sitemail_test-email-admin-${n}-0123456789abcdefghijklmnopqrstuv`;
const ADMINS = 8;

describe(`POST /test-email against attacks (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  let saved: TestSmtpServer;
  let other: TestSmtpServer;
  let app: FastifyInstance;
  let site: SiteConfig;
  let logText = '';
  const adminIds: string[] = [];

  const savedSite = (over: Partial<SiteConfig> & Record<string, unknown> = {}): SiteConfig => ({
    externalURL: 'https://sourcegraph.example.com',
    'email.senderName': 'Example Instance',
    'email.address': 'from@example.com',
    'email.smtp': {
      authentication: 'PLAIN',
      username: 'admin-mail',
      password: PASSWORD,
      // a name, so that the host comparison can be shown to ignore case
      host: 'localhost',
      port: saved.port,
      noVerifyTLS: false,
    },
    'auth.providers': [{ type: 'builtin' }],
    ...over,
  });
  const post = (admin: number, body: unknown) =>
    app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `token ${key(admin)}` },
      payload: body as object,
    });

  before(async () => {
    db = await notificationsDb('test-email');
    const users = [{ username: 'admin-mail', password: PASSWORD }];
    saved = await startSmtpServer({ auth: 'PLAIN', users });
    other = await startSmtpServer({ auth: 'PLAIN', users });
    site = savedSite();
    for (let n = 0; n < ADMINS; n++) {
      const s = new Stream();
      adminIds.push(s.userId);
      const email = `root${n}@example.com`;
      await handleEvent(
        db,
        s.created({ email, verified: true, siteAdmin: true, username: `root${n}` }),
        site,
        new Date(),
      );
      await handleEvent(db, s.apiKeyCreated(`key ${n}`, apiKeySecretSha256(key(n))), site, new Date());
    }
    const logs = new Writable({
      write(chunk, _enc, done) {
        logText += chunk.toString();
        done();
      },
    });
    app = Fastify({
      logger: { level: 'info', stream: logs },
      ajv: { customOptions: { removeAdditional: false } },
    });
    await app.register(notificationsApp, {
      db,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      worker: false,
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await saved?.close();
    await other?.close();
    await db?.close();
  });

  test('REDACTED credentials go only to the saved server: elsewhere a 400 naming the field, nothing sent', async () => {
    const elsewhere = [
      // another port on the same host
      { host: other.host, port: other.port, username: 'admin-mail', password: 'REDACTED' },
      // the saved host name, upper-cased, but another port
      { host: 'LOCALHOST', port: other.port, username: 'admin-mail', password: 'REDACTED' },
      // the saved server by another name (the same machine, but not the destination saved)
      { host: saved.host, port: saved.port, username: 'admin-mail', password: 'REDACTED' },
      // the saved server with certificate verification off
      {
        host: 'localhost',
        port: saved.port,
        username: 'admin-mail',
        password: 'REDACTED',
        noVerifyTLS: true,
      },
      // the saved host, implicit TLS
      { host: 'localhost', port: 465, username: 'admin-mail', password: 'REDACTED' },
    ];
    for (const smtp of elsewhere) {
      const res = await post(0, { to: 'a@b.example', smtp });
      assert.equal(res.statusCode, 400, `${JSON.stringify(smtp)} -> ${res.body}`);
      assert.equal(res.json().field, 'smtp.password');
      assert.match(res.body, /re-enter the password to test another server/);
      assert.ok(!res.body.includes(PASSWORD));
    }
    const username = await post(0, {
      to: 'a@b.example',
      smtp: { host: other.host, port: other.port, username: 'REDACTED', password: 'typed-Pa55' },
    });
    assert.equal(username.statusCode, 400, username.body);
    assert.equal(username.json().field, 'smtp.username');
    assert.deepEqual(other.authAttempts, [], 'the other server saw no AUTH');
    assert.equal(other.received.length, 0);

    // toward the saved server (host compared case-insensitively) REDACTED takes the saved value
    const same = await post(0, {
      to: 'a@b.example',
      smtp: { host: 'LocalHost', port: saved.port, username: 'REDACTED', password: 'REDACTED' },
    });
    assert.equal(same.statusCode, 200, same.body);
    assert.deepEqual(
      saved.authAttempts.map((a) => [a.username, a.success]),
      [['admin-mail', true]],
    );
  });

  test('every test send is logged with the admin, host, port and outcome, never a secret', async () => {
    const ok = await post(1, { to: 'a@b.example' });
    assert.equal(ok.statusCode, 200, ok.body);
    const failed = await post(1, {
      to: 'a@b.example',
      smtp: { host: other.host, port: other.port, username: 'admin-mail', password: 'wrong-Pa55-x' },
    });
    assert.equal(failed.statusCode, 502, failed.body);
    const lines = logText
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const mine = lines.filter((l) => l.adminUserId === adminIds[1]);
    assert.deepEqual(
      mine.map((l) => [l.host, l.port, l.outcome]),
      [
        ['localhost', saved.port, 'sent'],
        [other.host, other.port, 'failed'],
      ],
    );
    for (const secret of [
      PASSWORD,
      'wrong-Pa55-x',
      Buffer.from(`\0admin-mail\0${PASSWORD}`).toString('base64'),
    ]) {
      assert.ok(!logText.includes(secret), `log holds ${secret.slice(0, 4)}…`);
    }
  });

  test('never connects to link-local or cloud metadata addresses, whatever the spelling', async () => {
    for (const host of [
      '169.254.169.254',
      '2852039166', // 169.254.169.254 as one number, which the resolver accepts
      '[fe80::1]',
      '::ffff:169.254.169.254',
      'fd00:ec2::254',
      '100.100.100.200',
    ]) {
      const started = Date.now();
      const res = await post(2, { to: 'a@b.example', smtp: { host, port: 80, authentication: 'none' } });
      assert.equal(res.statusCode, 502, `${host} -> ${res.body}`);
      assert.equal(res.json().step, 'connect');
      assert.match(res.json().message, /refusing to connect to .*link-local or cloud metadata address/);
      // refused before any connection: no connection timeout was waited for
      assert.ok(Date.now() - started < 1000, `${host} took ${Date.now() - started} ms`);
    }
  });

  test('email.smtp.denyPrivateNetworks refuses private and loopback destinations, saved or not', async () => {
    site = savedSite({ 'email.smtp.denyPrivateNetworks': true });
    try {
      const sessions = saved.received.length;
      const savedOne = await post(3, { to: 'a@b.example' });
      assert.equal(savedOne.statusCode, 502, savedOne.body);
      assert.match(savedOne.json().message, /private or loopback address/);
      for (const host of ['127.0.0.1', 'localhost', '10.1.2.3', '192.168.0.1', '[::1]']) {
        const res = await post(3, { to: 'a@b.example', smtp: { host, port: 25, authentication: 'none' } });
        assert.equal(res.statusCode, 502, `${host} -> ${res.body}`);
        assert.match(res.json().message, /private or loopback address/, host);
      }
      assert.equal(saved.received.length, sessions);
    } finally {
      site = savedSite();
    }
  });

  test('a peer that is not an SMTP server: said so, its banner never echoed (response or log)', async () => {
    const banners = ['SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13 BANNER-SECRET', '+OK BANNER-SECRET ready'];
    for (const banner of banners) {
      const peer: Server = createServer((socket) => socket.end(`${banner}\r\n`));
      await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
      const port = (peer.address() as { port: number }).port;
      try {
        const res = await post(4, {
          to: 'a@b.example',
          smtp: { host: '127.0.0.1', port, authentication: 'none' },
        });
        assert.equal(res.statusCode, 502, res.body);
        assert.equal(
          res.json().message,
          `Failed to send test email: mail: the server at 127.0.0.1:${port} did not answer as an SMTP server`,
        );
        assert.equal(res.json().smtpResponse, undefined);
        assert.equal(res.json().responseCode, undefined);
        for (const part of ['BANNER-SECRET', 'OpenSSH', 'SSH-2.0', '+OK']) {
          assert.ok(!res.body.includes(part), `response echoes ${part}`);
        }
      } finally {
        await new Promise((resolve) => peer.close(resolve));
      }
    }
    assert.ok(!logText.includes('BANNER-SECRET'), 'the log echoes the banner');
  });

  test('rate limit: 10 per minute per admin, then 429 problem+json with retry-after; other admins unaffected', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await post(5, { to: 'not an address' })).statusCode);
    assert.deepEqual(statuses, [...Array(10).fill(400), 429, 429]);
    const limited = await post(5, { to: 'a@b.example' });
    assert.equal(limited.statusCode, 429);
    assert.match(String(limited.headers['content-type']), /^application\/problem\+json/);
    assert.ok(Number(limited.headers['retry-after']) > 0, 'retry-after in seconds');
    assert.equal((await post(6, { to: 'a@b.example' })).statusCode, 200);
  });

  test('to: the product grammar; a NUL is a 400, never stripped; IDN sent to the A-label form', async () => {
    for (const to of [
      'a\0b@b.example',
      'a@b.example\0',
      'a@b',
      '"a b"@example.com',
      'a@[127.0.0.1]',
      'ü@b.example',
    ]) {
      const res = await post(7, { to });
      assert.equal(res.statusCode, 400, `${JSON.stringify(to)} -> ${res.body}`);
      assert.equal(res.json().field, 'to');
    }
    const before = saved.received.length;
    const idn = await post(7, { to: 'user@bücher.example' });
    assert.equal(idn.statusCode, 200, idn.body);
    const got = (await saved.waitForEmails(before + 1))[before];
    // (the test server shows the envelope in Unicode; the header as sent)
    assert.match(got?.raw ?? '', /^To: user@xn--bcher-kva\.example\r?$/m);
    assert.match(idn.json().message, /user@xn--bcher-kva\.example/);
  });
});
