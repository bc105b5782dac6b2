import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { renderTestEmail } from './test-email.ts';

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

describe('the test email', () => {
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

  test('a sender name with a bidi override or NUL keeps the subject on its fixed wording', () => {
    const e = renderTestEmail(
      { ...saved, 'email.senderName': 'Evil\u202e\u0000 Co' },
      'a@b.example',
      'ABCD1234',
      new Date('2026-01-02T03:04:05Z'),
    );
    assert.equal(e.subject, 'TEST: email sent from Evil Co [ABCD1234]');
  });
});
