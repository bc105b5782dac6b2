import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SiteConfig } from '@sitemail/site-config';
import {
  CredentialsForAnotherServer,
  effectiveConfig,
  newTestId,
  readTestAddresses,
  SecretForAnotherTokenEndpoint,
} from './test-email.ts';

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
  test('unsaved smtp replaces the saved one; REDACTED takes the saved value toward the saved server; defaults as the config file', () => {
    const c = effectiveConfig(saved, {
      smtp: { host: 'SMTP.Saved.Example.', port: 587, username: 'REDACTED', password: 'REDACTED' },
    });
    assert.deepEqual(c['email.smtp'], {
      authentication: 'PLAIN',
      host: 'SMTP.Saved.Example.',
      port: 587,
      noVerifyTLS: false,
      username: 'saved-user',
      password: 'saved-password',
    });
    assert.equal(c['email.address'], 'saved@example.com');
    assert.equal(saved['email.smtp']?.host, 'smtp.saved.example', 'saved config untouched');
    const typed = effectiveConfig(saved, {
      smtp: { host: 'smtp.new.example', port: 465, username: 'new-user', password: 'new-password' },
    });
    assert.equal(typed['email.smtp']?.password, 'new-password');
  });

  test('a REDACTED credential toward any other destination is refused naming the field', () => {
    const cases: [object, string][] = [
      [
        { host: 'smtp.new.example', port: 587, username: 'saved-user', password: 'REDACTED' },
        'smtp.password',
      ],
      [
        { host: 'smtp.saved.example', port: 2525, username: 'saved-user', password: 'REDACTED' },
        'smtp.password',
      ],
      [
        { host: 'smtp.saved.example', port: 465, username: 'saved-user', password: 'REDACTED' },
        'smtp.password',
      ],
      [
        {
          host: 'smtp.saved.example',
          port: 587,
          username: 'saved-user',
          password: 'REDACTED',
          noVerifyTLS: true,
        },
        'smtp.password',
      ],
      [{ host: 'smtp.new.example', port: 587, username: 'REDACTED', password: 'typed' }, 'smtp.username'],
      [{ host: 'REDACTED', port: 25, username: 'saved-user', password: 'REDACTED' }, 'smtp.password'],
    ];
    for (const [smtp, field] of cases) {
      assert.throws(
        () => effectiveConfig(saved, { smtp: smtp as never }),
        (err: unknown) =>
          err instanceof CredentialsForAnotherServer &&
          err.field === field &&
          /re-enter the (password|username) to test another server/.test(err.message) &&
          !err.message.includes('saved-password'),
        JSON.stringify(smtp),
      );
    }
    // saved with verification off: REDACTED is refused even toward the saved server
    const insecure = { ...saved, 'email.smtp': { ...saved['email.smtp']!, noVerifyTLS: true } };
    assert.throws(
      () =>
        effectiveConfig(insecure, { smtp: { host: 'smtp.saved.example', port: 587, password: 'REDACTED' } }),
      CredentialsForAnotherServer,
    );
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

  test('addresses: the product grammar, canonical; nothing stripped', () => {
    assert.deepEqual(readTestAddresses({ to: ' a@Bücher.Example ' }), {
      ok: true,
      to: 'a@xn--bcher-kva.example',
    });
    for (const to of [
      'a\0@b.example',
      'a@b',
      'a@b.example, c@d.example',
      '"a b"@example.com',
      'a@[127.0.0.1]',
    ]) {
      const r = readTestAddresses({ to });
      assert.equal(r.ok, false, to);
      assert.equal(!r.ok && r.field, 'to');
    }
    const r = readTestAddresses({ to: 'a@b.example', 'email.address': 'x@y' });
    assert.equal(!r.ok && r.field, 'email.address');
    assert.deepEqual(readTestAddresses({ to: 'a@b.example', 'email.address': 'REDACTED' }), {
      ok: true,
      to: 'a@b.example',
    });
  });

  test('test IDs: 8 characters of Crockford base32, different each time', () => {
    assert.equal(newTestId(Buffer.from([0, 0, 0, 0, 0])), '00000000');
    assert.equal(newTestId(Buffer.from([255, 255, 255, 255, 255])), 'ZZZZZZZZ');
    const ids = new Set(Array.from({ length: 200 }, () => newTestId()));
    assert.equal(ids.size, 200);
    for (const id of ids) assert.match(id, /^[0-9A-HJKMNP-TV-Z]{8}$/);
  });

  test('XOAUTH2: REDACTED oauth2 secrets take the saved value only toward the saved server AND the saved token endpoint', () => {
    const tokenURL = 'https://login.microsoftonline.com/t/oauth2/v2.0/token';
    const oauthSaved: SiteConfig = {
      ...saved,
      'email.smtp': {
        authentication: 'XOAUTH2',
        username: 'mailbox@saved.example',
        oauth2: {
          tokenURL,
          clientID: 'app',
          clientSecret: 'saved-client-secret',
          refreshToken: 'saved-refresh-token',
          grant: 'client_credentials',
        },
        host: 'smtp.saved.example',
        port: 587,
        noVerifyTLS: false,
      },
    };
    const unsaved = (over: object, smtp: object = {}) => ({
      smtp: {
        authentication: 'XOAUTH2' as const,
        username: 'REDACTED',
        host: 'smtp.saved.example',
        port: 587,
        oauth2: {
          tokenURL,
          clientID: 'app',
          clientSecret: 'REDACTED',
          grant: 'client_credentials' as const,
          ...over,
        },
        ...smtp,
      },
    });
    const same = effectiveConfig(oauthSaved, unsaved({ refreshToken: 'REDACTED', grant: 'refresh_token' }));
    assert.equal(same['email.smtp']?.oauth2?.clientSecret, 'saved-client-secret');
    assert.equal(same['email.smtp']?.oauth2?.refreshToken, 'saved-refresh-token');
    assert.equal(same['email.smtp']?.oauth2?.grant, 'refresh_token');
    assert.equal(same['email.smtp']?.username, 'mailbox@saved.example');

    const refusals: [object, object, string][] = [
      [{ tokenURL: 'https://evil.example/token' }, {}, 'smtp.oauth2.clientSecret'],
      [{}, { host: 'smtp.other.example', username: 'typed@x.example' }, 'smtp.oauth2.clientSecret'],
      [{ clientSecret: 'typed', privateKey: 'REDACTED' }, {}, 'smtp.oauth2.privateKey'],
    ];
    for (const [over, smtp, field] of refusals) {
      assert.throws(
        () => effectiveConfig(oauthSaved, unsaved(over, smtp)),
        (err: unknown) =>
          (err instanceof SecretForAnotherTokenEndpoint ||
            err instanceof CredentialsForAnotherServer ||
            /no value is saved/.test(String(err))) &&
          (err as { field?: string }).field === field &&
          !String(err).includes('saved-client-secret'),
        JSON.stringify(over),
      );
    }
    assert.throws(
      () => effectiveConfig(oauthSaved, unsaved({ tokenURL: 'https://evil.example/token' })),
      /stands for the saved value only toward the saved server and the saved token endpoint/,
    );
    const typed = effectiveConfig(
      oauthSaved,
      unsaved({ tokenURL: 'https://other.example/t', clientSecret: 'new' }),
    );
    assert.equal(typed['email.smtp']?.oauth2?.clientSecret, 'new');
  });
});
