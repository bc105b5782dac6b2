import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import type { SiteConfig, SmtpOAuth2Config } from '@sitemail/site-config';
import { startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import { exportPKCS8, generateKeyPair } from 'jose';
import { startTokenEndpoint, type TokenEndpoint } from '../../test/token-endpoint.ts';
import { createMailer } from './mailer.ts';
import { type Mailer, SmtpSendError } from './types.ts';

const MAILBOX = 'sender@tenant.example';
const CLIENT_ID = 'app-1234';
const CLIENT_SECRET = 'cs-Zq9!-very-secret';
const REFRESH_TOKEN = 'rt-1//0g-long-lived';

const site = (smtp: TestSmtpServer, oauth2: SmtpOAuth2Config): SiteConfig => ({
  externalURL: 'https://sourcegraph.example.com',
  'email.address': MAILBOX,
  'email.smtp': {
    authentication: 'XOAUTH2',
    username: MAILBOX,
    oauth2,
    host: smtp.host,
    port: smtp.port,
    noVerifyTLS: false,
  },
  'auth.providers': [{ type: 'builtin' }],
});

const email = (subject: string) => ({
  to: 'rcpt@b.example',
  subject,
  text: subject,
  html: `<p>${subject}</p>`,
});

describe('XOAUTH2 against a real SMTP server and a real token endpoint', () => {
  let endpoint: TokenEndpoint;
  let privateKeyPem: string;
  const closers: (() => Promise<void>)[] = [];
  const smtpServer = async () => {
    const s = await startSmtpServer({
      auth: 'XOAUTH2',
      acceptToken: (user, token) => endpoint.valid(token, user),
    });
    closers.push(() => s.close());
    return s;
  };
  const mailer = (config: SiteConfig, opts: Parameters<typeof createMailer>[1] = {}): Mailer => {
    const m = createMailer(() => config, opts);
    closers.unshift(() => m.close());
    return m;
  };
  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    privateKeyPem = await exportPKCS8(privateKey);
    endpoint = await startTokenEndpoint(publicKey, {
      clientID: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      refreshToken: REFRESH_TOKEN,
    });
  });
  after(async () => {
    for (const close of closers) await close();
    await endpoint.close();
  });

  const grants = (): [string, () => SmtpOAuth2Config, string][] => [
    [
      'client_credentials (client secret)',
      () => ({
        tokenURL: endpoint.url,
        clientID: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        scope: 'https://outlook.office365.com/.default',
        grant: 'client_credentials',
      }),
      'secret',
    ],
    [
      'client_credentials (private_key_jwt)',
      () => ({
        tokenURL: endpoint.url,
        clientID: CLIENT_ID,
        privateKey: privateKeyPem,
        keyID: 'cert-1',
        certificateThumbprint: 'A1:B2:C3:D4:E5:F6:07:18:29:3A:4B:5C:6D:7E:8F:90:12:34:56:78',
        grant: 'client_credentials',
      }),
      'private_key_jwt',
    ],
    [
      'refresh_token',
      () => ({
        tokenURL: endpoint.url,
        clientID: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        refreshToken: REFRESH_TOKEN,
        grant: 'refresh_token',
      }),
      'secret',
    ],
    [
      'jwt_bearer (service account for the mailbox)',
      () => ({
        tokenURL: endpoint.url,
        clientID: CLIENT_ID,
        privateKey: privateKeyPem,
        scope: 'https://mail.google.com/',
        grant: 'jwt_bearer',
      }),
      'none',
    ],
  ];

  for (const [name, oauth2, clientAuth] of grants()) {
    test(`${name}: the server observes AUTH XOAUTH2 with the mailbox and a token the endpoint issued`, async () => {
      const s = await smtpServer();
      const before = endpoint.requests.length;
      await mailer(site(s, oauth2())).send(email(name));
      const [got] = await s.waitForEmails(1);
      assert.equal(got?.authMethod, 'XOAUTH2');
      assert.equal(got?.authenticatedUser, MAILBOX);
      assert.equal(s.authAttempts.length, 1);
      const [attempt] = s.authAttempts;
      assert.equal(attempt?.method, 'XOAUTH2');
      assert.equal(attempt?.username, MAILBOX);
      assert.ok(attempt?.success && endpoint.valid(attempt.accessToken ?? '', MAILBOX));
      const made = endpoint.requests.slice(before);
      assert.equal(made.length, 1);
      assert.equal(made[0]?.clientAuth, clientAuth);
      if (clientAuth === 'private_key_jwt') {
        // Microsoft names the certificate by x5t (base64url of the SHA-1 thumbprint)
        assert.equal(
          made[0]?.assertionHeader?.x5t,
          Buffer.from('A1B2C3D4E5F60718293A4B5C6D7E8F9012345678', 'hex').toString('base64url'),
        );
        assert.equal(made[0]?.assertionHeader?.kid, 'cert-1');
      }
      if (name.startsWith('jwt_bearer')) assert.equal(made[0]?.assertionHeader?.alg, 'RS256');
    });
  }

  test('a server listing LOGIN before XOAUTH2 (as Microsoft 365 does): XOAUTH2 is used, never LOGIN', async () => {
    const s = await startSmtpServer({
      auth: 'XOAUTH2',
      offer: ['LOGIN', 'XOAUTH2'],
      acceptToken: (user, token) => endpoint.valid(token, user),
    });
    closers.push(() => s.close());
    await mailer(site(s, grants()[0]![1]())).send(email('m365 order'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.authMethod, 'XOAUTH2');
    assert.deepEqual(
      s.authAttempts.map((a) => a.method),
      ['XOAUTH2'],
    );
  });

  test('200 emails through a pool of 5 connections cost ONE token request', async () => {
    const s = await smtpServer();
    const before = endpoint.requests.length;
    const m = mailer(site(s, grants()[0]![1]()), { poolSize: 5 });
    await Promise.all(Array.from({ length: 200 }, (_, i) => m.send(email(`bulk ${i}`))));
    assert.equal((await s.waitForEmails(200)).length, 200);
    assert.ok(new Set(s.sessions.map((x) => x.id)).size > 1, 'several connections authenticated');
    assert.equal(endpoint.requests.length - before, 1);
    const tokens = new Set(s.authAttempts.map((a) => a.accessToken));
    assert.equal(tokens.size, 1, 'every connection used the one token');
  });

  test('a pool replaced for its age (connectionReuseMs) keeps the token: new connection, no new token request', async () => {
    const s = await smtpServer();
    const before = endpoint.requests.length;
    const m = mailer(site(s, grants()[0]![1]()), { connectionReuseMs: 150 });
    await m.send(email('before the pool ages'));
    await new Promise((r) => setTimeout(r, 200));
    await m.send(email('after'));
    await s.waitForEmails(2);
    assert.equal(s.sessions.length, 2, 'the aged pool was replaced by a new connection');
    assert.equal(endpoint.requests.length - before, 1, 'one token request for both pools');
    assert.equal(new Set(s.authAttempts.map((a) => a.accessToken)).size, 1);
  });

  test('a token the server rejects as expired is refreshed once and the email is sent', async () => {
    const s = await smtpServer();
    const m = mailer(site(s, grants()[2]![1]()), { poolSize: 3 });
    await m.send(email('first'));
    const first = s.authAttempts[0]?.accessToken ?? '';
    const before = endpoint.requests.length;
    // the provider ends the token's life early (revoked, or the clock ran ahead); the mailer
    // still holds it as fresh, and the new connections of the pool present it
    endpoint.expire(first);
    await Promise.all([1, 2, 3].map((i) => m.send(email(`after expiry ${i}`))));
    assert.equal((await s.waitForEmails(4)).length, 4);
    const refused = s.authAttempts.filter((a) => !a.success);
    assert.ok(refused.length >= 1, 'a new connection presented the expired token');
    assert.ok(refused.every((a) => a.accessToken === first));
    for (const r of refused) {
      const next = s.authAttempts.filter((a) => a.sessionId === r.sessionId && a.success);
      assert.equal(next.length, 1, 'the same connection authenticated once more, with a new token');
      assert.notEqual(next[0]?.accessToken, first);
    }
    assert.equal(endpoint.requests.length - before, 1, 'one refresh, shared by the connections');
  });

  test('toward a non-TLS, non-loopback host, or a server not offering XOAUTH2: refused before any token is requested or sent', async () => {
    const host = Object.values(os.networkInterfaces())
      .flatMap((l) => l ?? [])
      .find((a) => a.family === 'IPv4' && !a.internal)?.address;
    assert.ok(host, 'this machine needs a non-loopback IPv4 address');
    const far = await startSmtpServer({ host, auth: 'XOAUTH2', acceptToken: () => true });
    closers.push(() => far.close());
    const before = endpoint.requests.length;
    const clear = await mailer({ ...site(far, grants()[0]![1]()) })
      .send(email('clear'))
      .then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
    assert.ok(clear instanceof SmtpSendError);
    assert.equal(clear.step, 'tls');
    assert.match(clear.message, /^mail: refusing to send credentials in clear text to /);
    assert.ok(!far.commands.some((c) => c.command === 'AUTH'));

    const plainOnly = await startSmtpServer({ auth: 'PLAIN', users: [{ username: 'u', password: 'p' }] });
    closers.push(() => plainOnly.close());
    const notOffered = await mailer(site(plainOnly, grants()[0]![1]()))
      .send(email('not offered'))
      .then(
        () => assert.fail('expected a refusal'),
        (e: unknown) => e,
      );
    assert.ok(notOffered instanceof SmtpSendError);
    assert.equal(notOffered.step, 'auth');
    assert.equal(
      notOffered.message,
      'mail: the server does not offer AUTH XOAUTH2 (it offers PLAIN); check email.smtp.authentication',
    );
    assert.ok(!plainOnly.commands.some((c) => c.command === 'AUTH'));
    assert.equal(endpoint.requests.length, before, 'no token was requested');
  });

  test('a private key that is not a PEM PKCS#8 RSA key: step auth, permanent, the key named and never shown', async () => {
    const s = await smtpServer();
    const before = endpoint.requests.length;
    const badKey = '-----BEGIN PRIVATE KEY-----\nbm90LWEta2V5LXNlY3JldA==\n-----END PRIVATE KEY-----\n';
    const err = await mailer(site(s, { ...grants()[3]![1](), privateKey: badKey }))
      .send(email('bad key'))
      .then(
        () => assert.fail('expected a failure'),
        (e: unknown) => e,
      );
    assert.ok(err instanceof SmtpSendError);
    assert.equal(err.step, 'auth');
    assert.equal(err.permanent, true);
    assert.equal(err.message, 'mail: email.smtp.oauth2.privateKey is not a PEM PKCS#8 RSA private key');
    assert.equal(endpoint.requests.length, before);
  });

  test('a wrong client secret fails with step auth naming invalid_client, no secret anywhere', async () => {
    const s = await smtpServer();
    const lines: string[] = [];
    const logger = {
      info: (o: object, m: string) => lines.push(JSON.stringify(o) + m),
      warn: (o: object, m: string) => lines.push(JSON.stringify(o) + m),
    };
    const wrong = `${CLIENT_SECRET}-wrong`;
    const m = mailer(site(s, { ...grants()[0]![1](), clientSecret: wrong }), { logger });
    const err = await m.send(email('nope')).then(
      () => assert.fail('expected a failure'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof SmtpSendError);
    assert.equal(err.step, 'auth');
    assert.equal(err.permanent, true);
    assert.match(
      err.message,
      /^mail: the token endpoint http:\/\/127\.0\.0\.1:\d+\/oauth2\/v2\.0\/token refused: invalid_client \(AADSTS7000215/,
    );
    for (const text of [err.message, ...lines])
      assert.ok(!text.includes(wrong) && !text.includes(CLIENT_SECRET));
    assert.ok(!s.commands.some((c) => c.command === 'AUTH'), 'no AUTH without a token');
    assert.equal(s.received.length, 0);
  });
});
