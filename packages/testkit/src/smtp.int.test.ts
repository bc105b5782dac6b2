import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { startSmtpServer, type TestSmtpServer } from './smtp.ts';

/**
 * A deliberately small SMTP client speaking the raw protocol, so the helper is tested without
 * the nodemailer client the services use (a bug in one should not hide a bug in the other).
 */
class RawClient {
  private buffer = '';
  private waiting: ((reply: string) => void) | undefined;
  private closed = false;
  constructor(private socket: net.Socket) {
    this.attach(socket);
  }
  private attach(socket: net.Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      this.deliver();
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {});
  }
  private deliver() {
    // a reply is complete when its last line is "ddd text" rather than "ddd-text"
    const m = /(^|\r\n)\d{3} [^\r\n]*\r\n/.exec(this.buffer);
    if (!m || !this.waiting) return;
    const end = m.index + m[0].length;
    const reply = this.buffer.slice(0, end);
    this.buffer = this.buffer.slice(end);
    const w = this.waiting;
    this.waiting = undefined;
    w(reply.trimEnd());
  }
  static connect(port: number, host = '127.0.0.1', implicitTls = false): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = implicitTls
        ? tls.connect({ port, host, rejectUnauthorized: false }, () => resolve(new RawClient(socket)))
        : net.connect({ port, host }, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }
  /** The next reply, or undefined if none arrives within `ms` (used to prove a hang). */
  reply(ms = 5000): Promise<string | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve(undefined);
      }, ms);
      this.waiting = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.deliver();
    });
  }
  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    const r = await this.reply();
    assert.ok(r, `no reply to ${line.split(' ')[0]}`);
    return r;
  }
  async startTls(): Promise<tls.TLSSocket> {
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    this.socket.removeAllListeners('data');
    this.socket = secure;
    this.attach(secure);
    return secure;
  }
  get isClosed() {
    return this.closed;
  }
  close() {
    this.socket.destroy();
  }
}

const message = (subject: string) =>
  [
    'From: "Sender" <from@example.com>',
    'To: rcpt@example.com',
    `Subject: ${subject}`,
    'Message-ID: <abc@example.com>',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Hello there.',
    '.',
  ].join('\r\n');

async function sendOne(c: RawClient, subject = 'hi'): Promise<string> {
  assert.match(await c.cmd('MAIL FROM:<from@example.com>'), /^250/);
  assert.match(await c.cmd('RCPT TO:<rcpt@example.com>'), /^250/);
  assert.match(await c.cmd('DATA'), /^354/);
  return c.cmd(message(subject));
}

describe('test SMTP server', () => {
  const servers: TestSmtpServer[] = [];
  const clients: RawClient[] = [];
  const start = async (opts: Parameters<typeof startSmtpServer>[0]) => {
    const s = await startSmtpServer(opts);
    servers.push(s);
    return s;
  };
  const connect = async (s: TestSmtpServer, implicitTls = false) => {
    const c = await RawClient.connect(s.port, s.host, implicitTls);
    clients.push(c);
    return c;
  };
  after(async () => {
    for (const c of clients) c.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  test('without auth or TLS it receives and parses a message, with the EHLO name', async () => {
    const s = await start({});
    const c = await connect(s);
    assert.match((await c.reply()) ?? '', /^220 /);
    const ehlo = await c.cmd('EHLO relay.example.org');
    assert.doesNotMatch(ehlo, /AUTH|STARTTLS/);
    assert.match(await sendOne(c, 'plain hello'), /^250/);
    const [mail] = await s.waitForEmails(1);
    assert.ok(mail);
    assert.equal(mail.subject, 'plain hello');
    assert.deepEqual(mail.envelope, { from: 'from@example.com', to: ['rcpt@example.com'] });
    assert.equal(mail.ehloName, 'relay.example.org');
    assert.equal(mail.secure, false);
    assert.equal(mail.authenticatedUser, undefined);
    assert.equal(mail.text?.trim(), 'Hello there.');
    assert.equal(mail.messageId, '<abc@example.com>');
    assert.deepEqual(
      s.sessions.map((x) => [x.remoteAddress, x.secure, x.closed]),
      [['127.0.0.1', false, false]],
    );
    await c.cmd('QUIT');
    for (let i = 0; i < 100 && !s.sessions[0]?.closed; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.sessions[0]?.closed, true);
    assert.match(mail.raw, /^From: "Sender" <from@example.com>/);
  });

  test('AUTH PLAIN: demanded, wrong password refused with 535, right one accepted; no password kept', async () => {
    const s = await start({ auth: 'PLAIN', users: [{ username: 'alice', password: 's3cret-pw' }] });
    const c = await connect(s);
    await c.reply();
    assert.match(await c.cmd('EHLO client.example'), /AUTH PLAIN/);
    assert.match(await c.cmd('MAIL FROM:<from@example.com>'), /^530/);
    const bad = Buffer.from('\0alice\0wrong').toString('base64');
    assert.match(await c.cmd(`AUTH PLAIN ${bad}`), /^535 5\.7\.8 Authentication failed/);
    const good = Buffer.from('\0alice\0s3cret-pw').toString('base64');
    assert.match(await c.cmd(`AUTH PLAIN ${good}`), /^235/);
    assert.match(await sendOne(c), /^250/);
    const [mail] = await s.waitForEmails(1);
    assert.equal(mail?.authenticatedUser, 'alice');
    assert.equal(mail?.authMethod, 'PLAIN');
    assert.deepEqual(
      s.authAttempts.map((a) => [a.method, a.username, a.success]),
      [
        ['PLAIN', 'alice', false],
        ['PLAIN', 'alice', true],
      ],
    );
    assert.ok(s.commands.some((x) => x.command === 'AUTH'));
    assert.doesNotMatch(JSON.stringify({ a: s.authAttempts, c: s.commands }), /s3cret|wrong|AGFsaWNl/);
  });

  test('AUTH CRAM-MD5: the challenge-response is checked against the password', async () => {
    const s = await start({ auth: 'CRAM-MD5', users: [{ username: 'bob', password: 'pw-bob' }] });
    const c = await connect(s);
    await c.reply();
    const ehlo = await c.cmd('EHLO client.example');
    assert.match(ehlo, /AUTH CRAM-MD5/);
    assert.doesNotMatch(ehlo, /AUTH PLAIN/);
    const answer = async (password: string) => {
      const challenge = await c.cmd('AUTH CRAM-MD5');
      assert.match(challenge, /^334 /);
      const decoded = Buffer.from(challenge.slice(4), 'base64').toString();
      const digest = createHmac('md5', password).update(decoded).digest('hex');
      return c.cmd(Buffer.from(`bob ${digest}`).toString('base64'));
    };
    assert.match(await answer('not-it'), /^535/);
    assert.match(await answer('pw-bob'), /^235/);
    assert.match(await sendOne(c), /^250/);
    const [mail] = await s.waitForEmails(1);
    assert.equal(mail?.authMethod, 'CRAM-MD5');
    assert.deepEqual(
      s.authAttempts.map((a) => [a.method, a.success]),
      [
        ['CRAM-MD5', false],
        ['CRAM-MD5', true],
      ],
    );
  });

  test('STARTTLS: offered, demanded before AUTH, and the session is secure afterwards', async () => {
    const s = await start({ auth: 'PLAIN', tls: 'starttls', users: [{ username: 'u', password: 'p' }] });
    const c = await connect(s);
    await c.reply();
    assert.match(await c.cmd('EHLO client.example'), /STARTTLS/);
    assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`), /^538/);
    assert.match(await c.cmd('STARTTLS'), /^220/);
    const secure = await c.startTls();
    assert.equal(secure.getPeerX509Certificate()?.toString().trim(), s.certificatePem.trim());
    assert.doesNotMatch(await c.cmd('EHLO client.example'), /STARTTLS/);
    assert.match(await c.cmd(`AUTH PLAIN ${Buffer.from('\0u\0p').toString('base64')}`), /^235/);
    assert.match(await sendOne(c), /^250/);
    const [mail] = await s.waitForEmails(1);
    assert.equal(mail?.secure, true);
    assert.equal(s.authAttempts[0]?.secure, true);
  });

  test('implicit TLS: TLS from the first byte with the throwaway certificate', async () => {
    const s = await start({ tls: 'implicit' });
    const c = await connect(s, true);
    assert.match((await c.reply()) ?? '', /^220 /);
    assert.doesNotMatch(await c.cmd('EHLO client.example'), /STARTTLS/);
    assert.match(await sendOne(c), /^250/);
    const [mail] = await s.waitForEmails(1);
    assert.equal(mail?.secure, true);
    // and a cleartext client gets nothing it can read as SMTP
    const plain = await connect(s);
    assert.equal(await plain.reply(300), undefined);
  });

  test('scripted replies: 421 at RCPT once, then accepted; 550 at DATA; setScript replaces', async () => {
    const s = await start({ script: [{ stage: 'rcpt', code: 421, times: 1 }] });
    const c1 = await connect(s);
    await c1.reply();
    await c1.cmd('EHLO client.example');
    await c1.cmd('MAIL FROM:<from@example.com>');
    assert.match(await c1.cmd('RCPT TO:<rcpt@example.com>'), /^421 /);
    const c2 = await connect(s);
    await c2.reply();
    await c2.cmd('EHLO client.example');
    assert.match(await sendOne(c2), /^250/);
    s.setScript([{ stage: 'data', code: 550, message: '5.7.1 Rejected by policy' }]);
    await c2.cmd('RSET');
    assert.match(await c2.cmd('MAIL FROM:<from@example.com>'), /^250/);
    assert.match(await c2.cmd('RCPT TO:<rcpt@example.com>'), /^250/);
    assert.match(await c2.cmd('DATA'), /^354/);
    assert.equal(await c2.cmd(message('refused')), '550 5.7.1 Rejected by policy');
    s.setScript([{ stage: 'mail', code: 450, times: 1 }]);
    assert.match(await c2.cmd('MAIL FROM:<from@example.com>'), /^450 /);
    assert.match(await c2.cmd('MAIL FROM:<from@example.com>'), /^250/);
    assert.equal(s.received.length, 1);
  });

  test('scripted connect reply replaces the greeting', async () => {
    const s = await start({ script: [{ stage: 'connect', code: 421, message: '4.3.2 Try again later' }] });
    const c = await connect(s);
    assert.equal(await c.reply(), '421 4.3.2 Try again later');
  });

  test('hang at greeting: no greeting ever; hang at data: message taken, never answered', async () => {
    const s = await start({ hang: 'greeting' });
    const c = await connect(s);
    // smtp-server greets after its 100 ms early-talker delay; 600 ms of silence is a hang
    assert.equal(await c.reply(600), undefined);
    s.setHang('data');
    const d = await connect(s);
    assert.match((await d.reply()) ?? '', /^220/);
    await d.cmd('EHLO client.example');
    await d.cmd('MAIL FROM:<from@example.com>');
    await d.cmd('RCPT TO:<rcpt@example.com>');
    await d.cmd('DATA');
    (d as unknown as { socket: net.Socket }).socket.write(`${message('never answered')}\r\n`);
    assert.equal(await d.reply(600), undefined);
    assert.equal(s.received.length, 0);
  });

  test('waitForEmails rejects with a clear message when too few arrive', async () => {
    const s = await start({});
    await assert.rejects(s.waitForEmails(1, 50), /expected 1 emails within 50 ms, got 0/);
  });

  test('binds a given host and port, and frees the port on close', async () => {
    const first = await startSmtpServer({});
    const port = first.port;
    await first.close();
    const again = await start({ port });
    assert.equal(again.port, port);
    const c = await connect(again);
    assert.match((await c.reply()) ?? '', /^220/);
  });
});
