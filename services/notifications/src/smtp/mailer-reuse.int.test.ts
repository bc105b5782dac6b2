import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { startSmtpServer, type TestSmtpServer } from '@sitemail/testkit';
import { createMailer, type MailerOptions } from './mailer.ts';
import type { Mailer } from './types.ts';

const site = (s: TestSmtpServer): SiteConfig => ({
  externalURL: 'https://sourcegraph.example.com',
  'email.address': 'from@example.com',
  'email.smtp': { host: s.host, port: s.port, authentication: 'none', noVerifyTLS: false },
  'auth.providers': [{ type: 'builtin' }],
});

const email = (i: number) => ({
  to: `rcpt${i}@b.example`,
  subject: `reuse ${i}`,
  text: `plain ${i}`,
  html: `<p>${i}</p>`,
});

const until = async (ok: () => boolean, what: string) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
};

// A new connection costs the server's greeting delay (smtp-server holds its 220 for 100 ms) and,
// on a real relay, TLS and AUTH: connections are reused by age, not by a count of messages.
describe('mailer: connection reuse', () => {
  const servers: TestSmtpServer[] = [];
  const mailers: Mailer[] = [];
  const setup = async (opts: MailerOptions = {}) => {
    const s = await startSmtpServer({});
    servers.push(s);
    const m = createMailer(() => site(s), opts);
    mailers.push(m);
    return { s, m };
  };
  after(async () => {
    await Promise.all(mailers.map((m) => m.close()));
    await Promise.all(servers.map((s) => s.close()));
  });

  test('150 sends one after another travel over one connection (nodemailer alone reconnects after 100)', async () => {
    const { s, m } = await setup();
    for (let i = 0; i < 150; i++) await m.send(email(i));
    await s.waitForEmails(150);
    assert.equal(s.sessions.length, 1);
    assert.ok(s.sessions.every((x) => !x.closed));
  });

  test('maxMessagesPerConnection 50: 150 sends over 3 connections, each closed after its 50th', async () => {
    const { s, m } = await setup({ maxMessagesPerConnection: 50 });
    for (let i = 0; i < 150; i++) await m.send(email(i));
    await s.waitForEmails(150);
    assert.equal(s.sessions.length, 3);
    const perSession = new Map<string, number>();
    for (const r of s.received) perSession.set(r.sessionId, (perSession.get(r.sessionId) ?? 0) + 1);
    assert.deepEqual([...perSession.values()], [50, 50, 50]);
  });

  test('a pool older than connectionReuseMs: the next send opens a new connection and the old one is closed', async () => {
    const { s, m } = await setup({ connectionReuseMs: 150 });
    await m.send(email(1));
    await m.send(email(2));
    assert.equal(s.sessions.length, 1, 'within the reuse time: one connection');
    await new Promise((r) => setTimeout(r, 200));
    await m.send(email(3));
    await s.waitForEmails(3);
    assert.equal(s.sessions.length, 2);
    await until(() => s.sessions[0]!.closed, 'the aged connection is closed');
    assert.equal(s.sessions[1]!.closed, false, 'the new connection is kept');
    assert.deepEqual(
      s.received.map((r) => r.sessionId),
      [s.sessions[0]!.id, s.sessions[0]!.id, s.sessions[1]!.id],
    );
  });

  test('a reuse time or message limit that is not positive is refused when the mailer is made', () => {
    const config = () => ({}) as SiteConfig;
    assert.throws(
      () => createMailer(config, { connectionReuseMs: 0 }),
      /connectionReuseMs: expected a positive/,
    );
    assert.throws(() => createMailer(config, { connectionReuseMs: Number.NaN }), /connectionReuseMs/);
    assert.throws(
      () => createMailer(config, { maxMessagesPerConnection: 0 }),
      /maxMessagesPerConnection: expected at least 1, got 0/,
    );
  });
});
