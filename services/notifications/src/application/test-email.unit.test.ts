import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import { effectiveConfig, newTestId } from './test-email.ts';

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

describe('test email: unsaved settings and test IDs', () => {
  test('unsaved smtp replaces the saved one; REDACTED takes the saved value; defaults as the config file', () => {
    const c = effectiveConfig(saved, {
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
    assert.deepEqual(effectiveConfig(saved, {}), saved);
  });

  test('REDACTED without a saved value is refused naming the field', () => {
    const { 'email.smtp': _, ...noSmtp } = saved;
    assert.throws(
      () => effectiveConfig(noSmtp, { smtp: { host: 'h', port: 25, password: 'REDACTED' } }),
      /invalid "smtp.password": reads "REDACTED" but no value is saved for it/,
    );
  });

  test('test IDs: 8 characters of Crockford base32, different each time', () => {
    assert.equal(newTestId(Buffer.from([0, 0, 0, 0, 0])), '00000000');
    assert.equal(newTestId(Buffer.from([255, 255, 255, 255, 255])), 'ZZZZZZZZ');
    const ids = new Set(Array.from({ length: 200 }, () => newTestId()));
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{8}$/);
  });
});
