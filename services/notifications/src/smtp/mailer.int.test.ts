import assert from 'node:assert/strict';
import os from 'node:os';
import { after, describe, test } from 'node:test';
import type { SiteConfig, SmtpConfig } from '@sitemail/site-config';
import { type SmtpServerOptions, startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import { ehloName, implicitTls } from './connection-rules.ts';
import { createMailer, type MailerOptions } from './mailer.ts';
import { type Mailer, SmtpSendError } from './types.ts';

const PASSWORD = 'hunter2-Zq9!';

function site(
  smtp: Partial<SmtpConfig> & Pick<SmtpConfig, 'host' | 'port'>,
  extra: Partial<SiteConfig> = {},
): SiteConfig {
  return {
    externalURL: 'https://sourcegraph.example.com',
    'email.senderName': 'Example Instance',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', noVerifyTLS: false, ...smtp },
    'auth.providers': [{ type: 'builtin' }],
    ...extra,
  };
}

const email = (subject = 'hello') => ({
  to: 'rcpt@b.example',
  subject,
  text: `plain ${subject}`,
  html: `<p>${subject}</p>`,
});

/** A non-loopback IPv4 address of this machine: credentials toward it must need TLS. */
function nonLoopbackAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? [])
      if (a.family === 'IPv4' && !a.internal && !a.address.startsWith('127.')) return a.address;
  }
  throw new Error('this machine has no non-loopback IPv4 address to bind the test SMTP server on');
}

async function sendError(mailer: Mailer, subject = 'x'): Promise<SmtpSendError> {
  try {
    await mailer.send(email(subject));
  } catch (err) {
    assert.ok(err instanceof SmtpSendError, `expected SmtpSendError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected the send to fail');
}

function captureLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  return {
    lines,
    logger: {
      info: (obj: object, msg: string) => lines.push({ level: 'info', obj, msg }),
      warn: (obj: object, msg: string) => lines.push({ level: 'warn', obj, msg }),
    },
  };
}

describe('mailer against a real SMTP server', () => {
  const servers: TestSmtpServer[] = [];
  const mailers: Mailer[] = [];
  const server = async (opts: SmtpServerOptions) => {
    const s = await startSmtpServer(opts);
    servers.push(s);
    return s;
  };
  // Port 465 is one per machine: another test process may hold it for a moment, so wait for it.
  const serverOn465 = async (opts: SmtpServerOptions) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await server({ ...opts, port: 465 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  const mailer = (config: () => SiteConfig, opts: MailerOptions = {}) => {
    const m = createMailer(config, opts);
    mailers.push(m);
    return m;
  };
  after(async () => {
    await Promise.all(mailers.map((m) => m.close()));
    await Promise.all(servers.map((s) => s.close()));
  });

  test('AUTH PLAIN: the server sees PLAIN with the configured user; From is "senderName" <email.address>', async () => {
    const s = await server({ auth: 'PLAIN', users: [{ username: 'alice', password: PASSWORD }] });
    const m = mailer(() =>
      site({ host: s.host, port: s.port, authentication: 'PLAIN', username: 'alice', password: PASSWORD }),
    );
    const sent = await m.send({ ...email('plain auth'), headers: { 'X-Sitemail-Delivery': 'd-1' } });
    const [got] = await s.waitForEmails(1);
    assert.ok(got);
    assert.equal(got.authMethod, 'PLAIN');
    assert.equal(got.authenticatedUser, 'alice');
    assert.equal(got.from, '"Example Instance" <from@example.com>');
    assert.deepEqual(got.envelope, { from: 'from@example.com', to: ['rcpt@b.example'] });
    assert.equal(got.subject, 'plain auth');
    assert.equal(got.text?.trim(), 'plain plain auth');
    assert.equal(got.html?.trim(), '<p>plain auth</p>');
    assert.equal(got.headers.get('x-sitemail-delivery'), 'd-1');
    assert.equal(got.messageId, sent.messageId);
    assert.match(sent.response, /^250 /);
  });

  test('AUTH CRAM-MD5: the server sees CRAM-MD5 and the password never crosses the wire', async () => {
    const s = await server({ auth: 'CRAM-MD5', users: [{ username: 'bob', password: PASSWORD }] });
    const m = mailer(() =>
      site({ host: s.host, port: s.port, authentication: 'CRAM-MD5', username: 'bob', password: PASSWORD }),
    );
    await m.send(email('cram'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.authMethod, 'CRAM-MD5');
    assert.equal(got?.authenticatedUser, 'bob');
    assert.deepEqual(
      s.authAttempts.map((a) => [a.method, a.success]),
      [['CRAM-MD5', true]],
    );
  });

  test('AUTH LOGIN: the server sees LOGIN with the configured user, and the email arrives', async () => {
    const s = await server({ auth: 'LOGIN', users: [{ username: 'alice', password: PASSWORD }] });
    const m = mailer(() =>
      site({ host: s.host, port: s.port, authentication: 'LOGIN', username: 'alice', password: PASSWORD }),
    );
    await m.send(email('login auth'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.authMethod, 'LOGIN');
    assert.equal(got?.authenticatedUser, 'alice');
    assert.deepEqual(
      s.authAttempts.map((a) => [a.method, a.username, a.success]),
      [['LOGIN', 'alice', true]],
    );
  });

  test('LOGIN: a wrong password fails at step auth, and LOGIN not offered is an error before any credential', async () => {
    const s = await server({ auth: 'LOGIN', users: [{ username: 'alice', password: 'the-right-one' }] });
    const wrong = await sendError(
      mailer(() =>
        site({ host: s.host, port: s.port, authentication: 'LOGIN', username: 'alice', password: PASSWORD }),
      ),
    );
    assert.equal(wrong.step, 'auth');
    assert.equal(wrong.responseCode, 535);
    assert.ok(
      !wrong.message.includes(PASSWORD) && !wrong.message.includes(Buffer.from(PASSWORD).toString('base64')),
    );

    const plainOnly = await server({ auth: 'PLAIN', users: [{ username: 'alice', password: PASSWORD }] });
    const notOffered = await sendError(
      mailer(() =>
        site({
          host: plainOnly.host,
          port: plainOnly.port,
          authentication: 'LOGIN',
          username: 'alice',
          password: PASSWORD,
        }),
      ),
    );
    assert.equal(notOffered.step, 'auth');
    assert.equal(
      notOffered.message,
      'mail: the server does not offer AUTH LOGIN (it offers PLAIN); check email.smtp.authentication',
    );
    assert.ok(!plainOnly.commands.some((c) => c.command === 'AUTH'));
  });

  test('LOGIN toward a non-TLS, non-loopback host is refused before any credential is sent', async () => {
    const host = nonLoopbackAddress();
    const s = await server({
      host,
      tls: 'none',
      auth: 'LOGIN',
      users: [{ username: 'u', password: PASSWORD }],
    });
    const err = await sendError(
      mailer(() => site({ host, port: s.port, authentication: 'LOGIN', username: 'u', password: PASSWORD })),
    );
    assert.equal(err.step, 'tls');
    assert.match(err.message, /^mail: refusing to send credentials in clear text to /);
    assert.ok(s.commands.some((c) => c.command === 'EHLO'));
    assert.ok(!s.commands.some((c) => c.command === 'AUTH'), 'never sent AUTH');
    assert.deepEqual(s.authAttempts, []);
    assert.equal(s.received.length, 0);
  });

  test('authentication "none": no AUTH command at all', async () => {
    const s = await server({ auth: 'none' });
    const m = mailer(() => site({ host: s.host, port: s.port, authentication: 'none' }));
    await m.send(email('no auth'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.authenticatedUser, undefined);
    assert.ok(s.commands.some((c) => c.command === 'MAIL'));
    assert.ok(!s.commands.some((c) => c.command === 'AUTH'));
  });

  test('STARTTLS on a 587-style port: upgraded before AUTH, the message travels over TLS', async () => {
    const s = await server({
      tls: 'starttls',
      auth: 'PLAIN',
      users: [{ username: 'u', password: PASSWORD }],
    });
    assert.notEqual(s.port, 465);
    const m = mailer(() =>
      site({
        host: s.host,
        port: s.port,
        authentication: 'PLAIN',
        username: 'u',
        password: PASSWORD,
        noVerifyTLS: true,
      }),
    );
    await m.send(email('starttls'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.secure, true);
    assert.equal(s.authAttempts[0]?.secure, true);
    const verbs = s.commands.map((c) => c.command);
    assert.ok(verbs.indexOf('STARTTLS') >= 0 && verbs.indexOf('STARTTLS') < verbs.indexOf('AUTH'));
  });

  test('implicit TLS: port 465 in the config means TLS from the first byte (server really on 465)', async () => {
    assert.equal(implicitTls(465), true);
    assert.equal(implicitTls(587), false);
    // The rule is by port number, so the server must listen on 465 itself (tests run as root here).
    const s = await serverOn465({
      tls: 'implicit',
      auth: 'PLAIN',
      users: [{ username: 'u', password: PASSWORD }],
    });
    assert.equal(s.port, 465);
    const m = mailer(() =>
      site({
        host: s.host,
        port: 465,
        authentication: 'PLAIN',
        username: 'u',
        password: PASSWORD,
        noVerifyTLS: true,
      }),
    );
    await m.send(email('implicit'));
    const [got] = await s.waitForEmails(1);
    assert.equal(got?.secure, true);
    assert.equal(s.sessions[0]?.secure, true, 'the session was TLS from the start');
    assert.ok(!s.commands.some((c) => c.command === 'STARTTLS'));
    // and on 465 too the self-signed certificate is refused unless noVerifyTLS says otherwise
    const strict = mailer(() =>
      site({ host: s.host, port: 465, authentication: 'PLAIN', username: 'u', password: PASSWORD }),
    );
    const err = await sendError(strict);
    assert.equal(err.step, 'tls');
    assert.match(err.message, /^mail: TLS failed: .*(self[- ]signed|certificate)/i);
    assert.equal(s.authAttempts.length, 1, 'no credentials went to the unverified server');
  });

  test('EHLO name is email.smtp.domain when set, else a real host name (never bare localhost)', async () => {
    const s = await server({});
    const withDomain = mailer(() => site({ host: s.host, port: s.port, domain: 'mail.example.com' }));
    await withDomain.send(email('domain'));
    const without = mailer(() => site({ host: s.host, port: s.port }));
    await without.send(email('no domain'));
    const [a, b] = await s.waitForEmails(2);
    assert.equal(a?.ehloName, 'mail.example.com');
    const expected = ehloName(undefined, os.hostname(), os.networkInterfaces());
    assert.equal(b?.ehloName, expected.toLowerCase());
    assert.notEqual(b?.ehloName, 'localhost');
  });

  test('noVerifyTLS: a self-signed certificate fails verification without it, is accepted (with one loud warning) with it', async () => {
    const s = await server({ tls: 'starttls' });
    const strict = mailer(() => site({ host: s.host, port: s.port }));
    const err = await sendError(strict, 'strict');
    assert.equal(err.step, 'tls');
    assert.match(err.message, /^mail: TLS failed: .*(self[- ]signed|certificate)/i);
    assert.equal(err.permanent, false);
    assert.equal(s.received.length, 0);

    const { lines, logger } = captureLogger();
    const lax = mailer(() => site({ host: s.host, port: s.port, noVerifyTLS: true }), { logger });
    await lax.send(email('lax 1'));
    await lax.send(email('lax 2'));
    const got = await s.waitForEmails(2);
    assert.ok(got.every((g) => g.secure));
    const warnings = lines.filter((l) => l.level === 'warn' && /noVerifyTLS/.test(l.msg));
    assert.equal(warnings.length, 1);
  });

  test('PLAIN toward a non-TLS, non-loopback host is refused before any credential is sent', async () => {
    const host = nonLoopbackAddress();
    const s = await server({
      host,
      tls: 'none',
      auth: 'PLAIN',
      users: [{ username: 'u', password: PASSWORD }],
    });
    const m = mailer(() =>
      site({ host, port: s.port, authentication: 'PLAIN', username: 'u', password: PASSWORD }),
    );
    const err = await sendError(m);
    assert.equal(err.step, 'tls');
    assert.match(
      err.message,
      new RegExp(`^mail: refusing to send credentials in clear text to ${host.replace(/\./g, '\\.')}`),
    );
    assert.ok(
      s.commands.some((c) => c.command === 'EHLO'),
      'the client did talk to the server',
    );
    assert.ok(!s.commands.some((c) => c.command === 'AUTH'), 'but never sent AUTH');
    assert.deepEqual(s.authAttempts, []);
    assert.equal(s.received.length, 0);
    assert.ok(!err.message.includes(PASSWORD));
  });

  test('a configured mechanism the server does not offer is an error, never an unauthenticated send', async () => {
    const open = await server({ auth: 'none' });
    const m1 = mailer(() =>
      site({ host: open.host, port: open.port, authentication: 'PLAIN', username: 'u', password: PASSWORD }),
    );
    const e1 = await sendError(m1);
    assert.equal(e1.step, 'auth');
    assert.equal(e1.permanent, true);
    assert.match(
      e1.message,
      /^mail: the server does not offer authentication, but email\.smtp\.authentication is "PLAIN"/,
    );
    assert.equal(open.received.length, 0, 'nothing was sent unauthenticated');
    assert.ok(!open.commands.some((c) => c.command === 'AUTH' || c.command === 'MAIL'));

    const plainOnly = await server({ auth: 'PLAIN', users: [{ username: 'u', password: PASSWORD }] });
    const m2 = mailer(() =>
      site({
        host: plainOnly.host,
        port: plainOnly.port,
        authentication: 'CRAM-MD5',
        username: 'u',
        password: PASSWORD,
      }),
    );
    const e2 = await sendError(m2);
    assert.equal(e2.step, 'auth');
    assert.equal(
      e2.message,
      'mail: the server does not offer AUTH CRAM-MD5 (it offers PLAIN); check email.smtp.authentication',
    );
    assert.ok(!plainOnly.commands.some((c) => c.command === 'AUTH'));
  });

  test('wrong password: "mail: 535 ..." at the auth step, permanent, no secret in the message', async () => {
    const s = await server({ auth: 'PLAIN', users: [{ username: 'u', password: 'the-right-one' }] });
    const m = mailer(() =>
      site({ host: s.host, port: s.port, authentication: 'PLAIN', username: 'u', password: PASSWORD }),
    );
    const err = await sendError(m);
    assert.equal(err.message, 'mail: 535 5.7.8 Authentication failed');
    assert.equal(err.step, 'auth');
    assert.equal(err.permanent, true);
    assert.equal(err.responseCode, 535);
    const b64 = Buffer.from(`\0u\0${PASSWORD}`).toString('base64');
    assert.ok(!JSON.stringify({ ...err, message: err.message }).includes(PASSWORD));
    assert.ok(!err.message.includes(b64));
  });

  test('4xx replies and connection failures are transient, 5xx replies permanent; each names its step', async () => {
    const s = await server({});
    const m = mailer(() => site({ host: s.host, port: s.port }));

    s.setScript([{ stage: 'rcpt', code: 450, message: '4.2.1 Mailbox busy', times: 1 }]);
    const busy = await sendError(m, 'busy');
    assert.deepEqual(
      [busy.message, busy.step, busy.permanent, busy.responseCode],
      ['mail: 450 4.2.1 Mailbox busy', 'envelope', false, 450],
    );

    s.setScript([{ stage: 'data', code: 550, message: '5.7.1 Message rejected as spam', times: 1 }]);
    const spam = await sendError(m, 'spam');
    assert.deepEqual(
      [spam.message, spam.step, spam.permanent, spam.responseCode],
      ['mail: 550 5.7.1 Message rejected as spam', 'data', true, 550],
    );

    // on a fresh connection (a reused one gets one transparent retry from the pool, see mailer.ts)
    s.setScript([{ stage: 'mail', code: 421, message: '4.3.2 Service shutting down', times: 1 }]);
    const shutting = await sendError(
      mailer(() => site({ host: s.host, port: s.port })),
      'shutting',
    );
    assert.deepEqual(
      [shutting.message, shutting.step, shutting.permanent, shutting.responseCode],
      ['mail: 421 4.3.2 Service shutting down', 'envelope', false, 421],
    );

    // a pooled connection the server drops with 421 before taking a byte of the message: the
    // pool retries once on a new connection, and the message arrives once
    s.setScript([{ stage: 'mail', code: 421, times: 1 }]);
    await m.send(email('after drop'));
    assert.deepEqual(
      s.received.map((r) => r.subject),
      ['after drop'],
    );

    // and after all that the pool still delivers
    s.setScript([]);
    await m.send(email('fine'));
    await s.waitForEmails(2);

    const gone = await startSmtpServer({});
    const port = gone.port;
    await gone.close();
    const refused = await sendError(mailer(() => site({ host: '127.0.0.1', port })));
    assert.equal(refused.message, `mail: connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.equal(refused.step, 'connect');
    assert.equal(refused.permanent, false);
    assert.equal(refused.responseCode, undefined);
  });

  test('a config change takes effect on the next send, without a restart', async () => {
    const a = await server({});
    const b = await server({ auth: 'PLAIN', users: [{ username: 'u', password: PASSWORD }] });
    let config = site({ host: a.host, port: a.port });
    const { lines, logger } = captureLogger();
    const m = mailer(() => config, { logger });
    await m.send(email('to a'));
    config = site({
      host: b.host,
      port: b.port,
      authentication: 'PLAIN',
      username: 'u',
      password: 'old-wrong',
    });
    const wrong = await sendError(m);
    assert.equal(wrong.step, 'auth');
    config = site({ host: b.host, port: b.port, authentication: 'PLAIN', username: 'u', password: PASSWORD });
    await m.send(email('to b'));
    config = { ...config, 'email.senderName': 'Renamed Instance' };
    await m.send(email('renamed'));
    assert.deepEqual(
      a.received.map((r) => r.subject),
      ['to a'],
    );
    assert.deepEqual(
      b.received.map((r) => [r.subject, r.from]),
      [
        ['to b', '"Example Instance" <from@example.com>'],
        ['renamed', '"Renamed Instance" <from@example.com>'],
      ],
    );
    assert.ok(lines.some((l) => /SMTP settings changed/.test(l.msg)));
    assert.ok(!JSON.stringify(lines).includes(PASSWORD));
  });

  test('a config change while a send is in flight: that send completes, then the old pool closes', async () => {
    const a = await server({});
    const b = await server({});
    let config = site({ host: a.host, port: a.port });
    const m = mailer(() => config);
    // the send to A is still connecting (smtp-server greets after 100 ms) when the config changes
    const toA = m.send(email('in flight to a'));
    config = site({ host: b.host, port: b.port });
    const toB = m.send(email('to b'));
    await Promise.all([toA, toB]);
    assert.deepEqual(
      a.received.map((r) => r.subject),
      ['in flight to a'],
    );
    assert.deepEqual(
      b.received.map((r) => r.subject),
      ['to b'],
    );
    // the retired pool lets go of its connection to A; the current one keeps B's open
    for (let i = 0; i < 150 && !a.sessions.every((x) => x.closed); i++)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(a.sessions.length === 1 && a.sessions.every((x) => x.closed), 'old pool closed its connection');
    assert.ok(
      b.sessions.some((x) => !x.closed),
      'current pool keeps its connection',
    );
  });

  test('pooled: several sends reuse one connection', async () => {
    const s = await server({});
    const m = mailer(() => site({ host: s.host, port: s.port }), { poolSize: 2 });
    for (let i = 0; i < 4; i++) await m.send(email(`pooled ${i}`));
    await s.waitForEmails(4);
    assert.equal(s.sessions.length, 1);
  });

  test('a hanging server times out: no greeting, and no answer after DATA', async () => {
    const silent = await server({ hang: 'greeting' });
    const m1 = mailer(() => site({ host: silent.host, port: silent.port }), {
      timeouts: { greetingMs: 400 },
    });
    const noGreeting = await sendError(m1);
    assert.equal(noGreeting.message, `mail: no greeting from ${silent.host}:${silent.port} within 400 ms`);
    assert.equal(noGreeting.step, 'connect');
    assert.equal(noGreeting.permanent, false);

    const stalls = await server({ hang: 'data' });
    const m2 = mailer(() => site({ host: stalls.host, port: stalls.port }), { timeouts: { socketMs: 600 } });
    const noAnswer = await sendError(m2);
    assert.equal(
      noAnswer.message,
      `mail: no reply from ${stalls.host}:${stalls.port} within 600 ms (after DATA)`,
    );
    assert.equal(noAnswer.step, 'data');
    assert.equal(noAnswer.permanent, false);
  });

  test('missing email.smtp or email.address: config errors with the product texts, nothing sent', async () => {
    const none = mailer(() => ({ ...site({ host: '127.0.0.1', port: 1 }), 'email.smtp': undefined }));
    const e1 = await sendError(none);
    assert.deepEqual(
      [e1.message, e1.step, e1.permanent],
      ['no SMTP server configured (in email.smtp)', 'config', true],
    );
    const noFrom = mailer(() => ({ ...site({ host: '127.0.0.1', port: 1 }), 'email.address': undefined }));
    const e2 = await sendError(noFrom);
    assert.deepEqual(
      [e2.message, e2.step, e2.permanent],
      ['no "From" email address configured (in email.address)', 'config', true],
    );
  });
});
