/**
 * DKIM signing from `email.dkim` (issue 11 item 7): an email sent by the mailer to the testkit's
 * real SMTP server carries a DKIM-Signature with the configured d= and s=, whose body hash and
 * RSA-SHA256 signature verify against the public key (checked here by hand after RFC 6376
 * §3.4.2 / §3.4.4 relaxed canonicalization: no verifier library is installed). The signature
 * covers the RFC 8058 headers, as RFC 8058 §4 requires for one-click unsubscribe.
 */
import assert from 'node:assert/strict';
import { createHash, createVerify, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import { createMailer } from './mailer.ts';
import type { Mailer } from './types.ts';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

/** Header fields of a raw message, unfolded, in order. */
function headerFields(raw: string): { name: string; value: string; line: string }[] {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
  return head.split(/\r\n(?![ \t])/).map((line) => ({
    line,
    name: line.slice(0, line.indexOf(':')),
    value: line.slice(line.indexOf(':') + 1),
  }));
}

/** RFC 6376 §3.4.2 relaxed header canonicalization. */
const relaxedHeader = (name: string, value: string) =>
  `${name.toLowerCase().trim()}:${value
    .replace(/\r\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .trim()}`;

/** RFC 6376 §3.4.4 relaxed body canonicalization. */
function relaxedBody(body: string): string {
  const lines = body.split('\r\n').map((l) => l.replace(/[ \t]+/g, ' ').replace(/ $/, ''));
  while (lines.length > 0 && lines.at(-1) === '') lines.pop();
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}

interface DkimCheck {
  tags: Record<string, string>;
  bodyHashMatches: boolean;
  signatureVerifies: boolean;
}

/** Verifies the (single) DKIM-Signature of a raw message with `key`, c=relaxed/relaxed, a=rsa-sha256. */
function checkDkim(raw: string, key: KeyObject): DkimCheck {
  const fields = headerFields(raw);
  const sig = fields.find((f) => f.name.toLowerCase() === 'dkim-signature');
  assert.ok(sig, 'a DKIM-Signature header');
  const tags = Object.fromEntries(
    sig.value
      .replace(/\r\n[ \t]+/g, '')
      .split(';')
      .map((t) => t.trim())
      .filter(Boolean)
      .map((t) => [t.slice(0, t.indexOf('=')).trim(), t.slice(t.indexOf('=') + 1).replace(/\s+/g, '')]),
  );
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  const bodyHash = createHash('sha256').update(relaxedBody(body), 'utf8').digest('base64');
  // h= names are taken from the bottom up when a name repeats (RFC 6376 §5.4.2)
  const used = new Map<string, number>();
  const signed = (tags.h ?? '').split(':').flatMap((name) => {
    const all = fields.filter((f) => f.name.toLowerCase() === name.toLowerCase() && f !== sig);
    const n = used.get(name.toLowerCase()) ?? 0;
    used.set(name.toLowerCase(), n + 1);
    const f = all[all.length - 1 - n];
    return f ? [`${relaxedHeader(f.name, f.value)}\r\n`] : [];
  });
  // the signature header itself, its b= emptied, without a trailing CRLF
  const unsigned = relaxedHeader(sig.name, sig.value.replace(/(\bb=)[^;]*/, '$1'));
  const verifier = createVerify('RSA-SHA256');
  verifier.update(signed.join('') + unsigned, 'utf8');
  return {
    tags,
    bodyHashMatches: bodyHash === tags.bh,
    signatureVerifies: verifier.verify(key, tags.b ?? '', 'base64'),
  };
}

describe('DKIM signing (email.dkim)', () => {
  let smtp: TestSmtpServer;
  let signing: Mailer;
  let plain: Mailer;
  const siteWith = (extra: Partial<SiteConfig> = {}): SiteConfig => ({
    externalURL: 'https://sourcegraph.example.com',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', host: smtp.host, port: smtp.port, noVerifyTLS: false },
    'auth.providers': [{ type: 'builtin' }],
    ...extra,
  });

  before(async () => {
    smtp = await startSmtpServer();
    signing = createMailer(() =>
      siteWith({ 'email.dkim': { domainName: 'example.com', keySelector: 'mail2026', privateKey: pem } }),
    );
    plain = createMailer(() => siteWith());
  });

  after(async () => {
    await signing?.close();
    await plain?.close();
    await smtp?.close();
  });

  const url = 'https://sourcegraph.example.com/-/unsubscribe/AAAA';
  const send = (mailer: Mailer, subject: string) =>
    mailer.send({
      to: 'alice@example.org',
      subject,
      text: `Results  of your monitor \t \r\n\r\n\r\nStop: ${url}\n`,
      html: `<p>Results</p><a href="${url}">Unsubscribe</a>`,
      headers: { 'List-Unsubscribe': `<${url}>`, 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' },
    });
  // the send resolved on the server's 250, which it gives once it holds the message
  const receivedBy = async (subject: string) => {
    const m = smtp.received.find((r) => r.subject === subject);
    assert.ok(m, subject);
    return m;
  };

  it('signs with d= and s= of the config; the body hash and the RSA-SHA256 signature verify, and cover the RFC 8058 headers', async () => {
    await send(signing, 'signed 1');
    const m = await receivedBy('signed 1');
    const check = checkDkim(m.raw, publicKey);
    assert.equal(check.tags.d, 'example.com');
    assert.equal(check.tags.s, 'mail2026');
    assert.equal(check.tags.a, 'rsa-sha256');
    assert.equal(check.tags.c, 'relaxed/relaxed');
    assert.equal(check.bodyHashMatches, true, 'bh= is the hash of the body received');
    assert.equal(check.signatureVerifies, true, 'b= verifies with the public key');
    const h = (check.tags.h ?? '').toLowerCase().split(':');
    for (const name of ['from', 'to', 'subject', 'message-id', 'list-unsubscribe', 'list-unsubscribe-post'])
      assert.ok(h.includes(name), `h= signs ${name}: ${check.tags.h}`);
  });

  it('the check fails on a changed body, a changed signed header or another key (so it can tell)', async () => {
    await send(signing, 'signed 2');
    const m = await receivedBy('signed 2');
    const tamperedBody = m.raw.replace('Results', 'Resultz');
    assert.equal(checkDkim(tamperedBody, publicKey).bodyHashMatches, false);
    const tamperedHeader = m.raw.replace(
      'List-Unsubscribe-Post: List-Unsubscribe=One-Click',
      'List-Unsubscribe-Post: List-Unsubscribe=Two-Click',
    );
    assert.notEqual(tamperedHeader, m.raw);
    assert.equal(checkDkim(tamperedHeader, publicKey).signatureVerifies, false);
    const other = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    assert.equal(checkDkim(m.raw, other).signatureVerifies, false);
  });

  it('without email.dkim nothing is signed', async () => {
    await send(plain, 'unsigned');
    const m = await receivedBy('unsigned');
    assert.equal(/^DKIM-Signature:/im.test(m.raw), false);
    assert.match(m.raw, /^Auto-Submitted: auto-generated\r$/m);
  });
});
