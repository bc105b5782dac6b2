import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { checkHeaderFields, effectiveConfig, newTestId, renderTestEmail } from './test-email.ts';

const saved: SiteConfig = {
  externalURL: 'https://sourcegraph.example.com',
  'email.senderName': 'Saved Name',
  'email.address': 'saved@example.com',
  'email.smtp': {
    authentication: 'CRAM-MD5',
    username: 'saved-user',
    password: 'saved-password',
    host: 'smtp.saved.example',
    port: 587,
    domain: 'saved.example',
    noVerifyTLS: false,
  },
  'auth.providers': [{ type: 'builtin' }],
};

describe('test email (pure parts)', () => {
  test('unsaved smtp replaces the saved one; REDACTED takes the saved value; defaults as the config file', () => {
    const c = effectiveConfig(saved, {
      to: 'a@b.example',
      smtp: { host: 'smtp.new.example', port: 465, username: 'REDACTED', password: 'REDACTED' },
    });
    assert.deepEqual(c['email.smtp'], {
      authentication: 'PLAIN',
      host: 'smtp.new.example',
      port: 465,
      noVerifyTLS: false,
      username: 'saved-user',
      password: 'saved-password',
    });
    assert.equal(c['email.address'], 'saved@example.com');
    assert.equal(saved['email.smtp']?.host, 'smtp.saved.example', 'saved config untouched');
  });

  test('no unsaved settings: the saved config as is', () => {
    assert.deepEqual(effectiveConfig(saved, { to: 'a@b.example' }), saved);
  });

  test('REDACTED without a saved value is refused naming the field', () => {
    const { 'email.smtp': _, ...noSmtp } = saved;
    assert.throws(
      () =>
        effectiveConfig(noSmtp, { to: 'a@b.example', smtp: { host: 'h', port: 25, password: 'REDACTED' } }),
      /invalid "smtp.password": reads "REDACTED" but no value is saved for it/,
    );
  });

  test('header fields: one address, no line breaks', () => {
    assert.equal(checkHeaderFields({ to: 'a@b.example' }), undefined);
    assert.equal(checkHeaderFields({ to: 'a@b.example', 'email.address': 'REDACTED' }), undefined);
    assert.equal(checkHeaderFields({ to: 'a@b.example\nX: y' })?.field, 'to');
    assert.equal(checkHeaderFields({ to: 'a@b.example,b@c.example' })?.field, 'to');
    assert.equal(
      checkHeaderFields({ to: 'a@b.example', 'email.senderName': 'x\ry' })?.field,
      'email.senderName',
    );
  });

  test('test IDs: 8 characters of Crockford base32, different each time', () => {
    assert.equal(newTestId(Buffer.from([0, 0, 0, 0, 0])), '00000000');
    assert.equal(newTestId(Buffer.from([255, 255, 255, 255, 255])), 'ZZZZZZZZ');
    const ids = new Set(Array.from({ length: 200 }, () => newTestId()));
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{8}$/);
  });

  test('the email: subject starts "TEST: email sent from", the test ID everywhere, HTML escaped', () => {
    const e = renderTestEmail(
      { ...saved, 'email.senderName': 'A <b>&</b> Co' },
      'a@b.example',
      'ABCD1234',
      new Date('2026-01-02T03:04:05Z'),
    );
    assert.equal(e.subject, 'TEST: email sent from A <b>&</b> Co [ABCD1234]');
    assert.ok(e.text.includes('Test ID: ABCD1234'));
    assert.ok(e.text.includes('2026-01-02T03:04:05.000Z'));
    assert.ok(e.html.includes('A &lt;b&gt;&amp;&lt;/b&gt; Co'));
    assert.ok(!e.html.includes('<b>&</b>'));
    assert.ok(e.html.includes('ABCD1234'));
    assert.equal(e.headers['X-Sitemail-Test-Id'], 'ABCD1234');
  });
});
