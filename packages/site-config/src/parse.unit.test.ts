import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  builtinAuthEnabled,
  DEFAULT_SENDER_NAME,
  parseSiteConfig,
  REDACTED,
  redactSiteConfig,
  SiteConfigError,
  senderName,
  smtpConfigured,
  staticSiteConfig,
} from './index.ts';

const issuesOf = (text: string) => {
  try {
    parseSiteConfig(text);
  } catch (err) {
    assert.ok(err instanceof SiteConfigError, String(err));
    return { issues: err.issues, message: err.message };
  }
  assert.fail('expected a SiteConfigError');
};

const withSmtp = (smtp: object, extra: object = {}) =>
  JSON.stringify({ externalURL: 'https://sg.example.com', 'email.smtp': smtp, ...extra });

describe('parseSiteConfig', () => {
  it('reads JSONC with comments and trailing commas, applying defaults', () => {
    const config = parseSiteConfig(`{
      // base of links in emails
      "externalURL": "https://sourcegraph.example.com",
      /* block comment */
      "email.address": "from@example.com",
      "email.smtp": { "host": "smtp.example.com", "port": 587, "username": "u", "password": "p", },
      "search.index.enabled": true, // unknown top-level keys are the product's other settings
    }`);
    assert.equal(config.externalURL, 'https://sourcegraph.example.com');
    assert.deepEqual(config['email.smtp'], {
      host: 'smtp.example.com',
      port: 587,
      username: 'u',
      password: 'p',
      authentication: 'PLAIN',
      noVerifyTLS: false,
    });
    assert.deepEqual(config['auth.providers'], [{ type: 'builtin' }]);
    assert.equal(config['email.senderName'], undefined);
    assert.equal(senderName(config), DEFAULT_SENDER_NAME);
    assert.equal((config as unknown as Record<string, unknown>)['search.index.enabled'], true);
  });

  it('keeps explicit values and provider fields', () => {
    const config = parseSiteConfig(
      JSON.stringify({
        externalURL: 'http://localhost:3001/base',
        'email.senderName': 'Example Instance',
        'email.smtp': {
          host: '127.0.0.1',
          port: 2525,
          authentication: 'none',
          noVerifyTLS: true,
          domain: 'mx.example',
        },
        'auth.providers': [{ type: 'github', clientID: 'abc', clientSecret: 'shh' }],
      }),
    );
    assert.equal(senderName(config), 'Example Instance');
    assert.equal(config['email.smtp']?.authentication, 'none');
    assert.equal(config['email.smtp']?.noVerifyTLS, true);
    assert.equal(config['email.smtp']?.domain, 'mx.example');
    assert.equal(config['auth.providers'][0]?.clientSecret, 'shh');
    assert.equal(builtinAuthEnabled(config), false);
    assert.equal(smtpConfigured(config), true);
  });

  it('names the key and the problem for a bad port', () => {
    const { issues, message } = issuesOf(withSmtp({ host: 'h', port: 0, authentication: 'none' }));
    assert.deepEqual(issues, [{ key: 'email.smtp.port', message: 'must be an integer from 1 to 65535' }]);
    assert.equal(message, 'invalid site config: email.smtp.port: must be an integer from 1 to 65535');
    assert.deepEqual(
      issuesOf(withSmtp({ host: 'h', port: 70000, authentication: 'none' })).issues[0]?.key,
      'email.smtp.port',
    );
    assert.deepEqual(
      issuesOf(withSmtp({ host: 'h', port: '587', authentication: 'none' })).issues[0]?.key,
      'email.smtp.port',
    );
    assert.deepEqual(
      issuesOf(withSmtp({ host: 'h', port: 25.5, authentication: 'none' })).issues[0]?.key,
      'email.smtp.port',
    );
  });

  it('takes email.smtp.maxMessagesPerSecond as a positive number and names the key otherwise', () => {
    const smtp = { host: 'h', port: 25, authentication: 'none' };
    const ok = parseSiteConfig(withSmtp({ ...smtp, maxMessagesPerSecond: 0.5 }));
    assert.equal(ok['email.smtp']?.maxMessagesPerSecond, 0.5);
    assert.equal(parseSiteConfig(withSmtp(smtp))['email.smtp']?.maxMessagesPerSecond, undefined);
    for (const bad of [0, -3, '20', null, true]) {
      assert.deepEqual(issuesOf(withSmtp({ ...smtp, maxMessagesPerSecond: bad })).issues, [
        { key: 'email.smtp.maxMessagesPerSecond', message: 'must be a positive number (emails per second)' },
      ]);
    }
  });

  it('takes email.delivery.maxAgeHours as hours in (0, 720] and names the key otherwise', () => {
    const ok = parseSiteConfig(
      withSmtp({ host: 'h', port: 25, authentication: 'none' }, { 'email.delivery.maxAgeHours': 0.5 }),
    );
    assert.equal(ok['email.delivery.maxAgeHours'], 0.5);
    for (const bad of [0, -1, 721, '48', null]) {
      assert.deepEqual(
        issuesOf(
          withSmtp({ host: 'h', port: 25, authentication: 'none' }, { 'email.delivery.maxAgeHours': bad }),
        ).issues,
        [
          {
            key: 'email.delivery.maxAgeHours',
            message: 'must be a number of hours greater than 0 and at most 720 (30 days)',
          },
        ],
      );
    }
  });

  it('takes email.delivery.retentionDays and kafka.topicRetentionHours as positive numbers, naming the key otherwise', () => {
    const smtp = { host: 'h', port: 25, authentication: 'none' };
    const ok = parseSiteConfig(
      withSmtp(smtp, { 'email.delivery.retentionDays': 30, 'kafka.topicRetentionHours': 72 }),
    );
    assert.equal(ok['email.delivery.retentionDays'], 30);
    assert.equal(ok['kafka.topicRetentionHours'], 72);
    for (const bad of [0, -1, 3651, '90', null]) {
      assert.deepEqual(issuesOf(withSmtp(smtp, { 'email.delivery.retentionDays': bad })).issues, [
        {
          key: 'email.delivery.retentionDays',
          message: 'must be a number of days greater than 0 and at most 3650 (10 years)',
        },
      ]);
    }
    for (const bad of [0, -5, '168', false]) {
      assert.deepEqual(issuesOf(withSmtp(smtp, { 'kafka.topicRetentionHours': bad })).issues, [
        {
          key: 'kafka.topicRetentionHours',
          message: "must be a number of hours greater than 0 (the topic's retention.ms in hours)",
        },
      ]);
    }
  });

  it('rejects an unknown authentication mechanism', () => {
    const { issues } = issuesOf(withSmtp({ host: 'h', port: 25, authentication: 'GSSAPI' }));
    assert.deepEqual(issues, [
      {
        key: 'email.smtp.authentication',
        message: 'must be one of "PLAIN", "CRAM-MD5", "LOGIN", "XOAUTH2", "none"',
      },
    ]);
  });

  it('requires username and password for PLAIN (the default) and CRAM-MD5, never quoting the password', () => {
    assert.deepEqual(issuesOf(withSmtp({ host: 'h', port: 25 })).issues, [
      { key: 'email.smtp.username', message: 'is required when authentication is PLAIN' },
      { key: 'email.smtp.password', message: 'is required when authentication is PLAIN' },
    ]);
    const { issues, message } = issuesOf(
      withSmtp({ host: 'h', port: 99999, authentication: 'CRAM-MD5', password: 'hunter2-secret' }),
    );
    assert.deepEqual(
      issues.map((i) => i.key),
      ['email.smtp.port', 'email.smtp.username'],
    );
    assert.ok(!message.includes('hunter2-secret'), message);
    assert.doesNotThrow(() => parseSiteConfig(withSmtp({ host: 'h', port: 25, authentication: 'none' })));
  });

  it('never quotes the password even when it is the wrong type or the key is misspelled', () => {
    const a = issuesOf(withSmtp({ host: 'h', port: 25, username: 'u', password: 12345678 }));
    assert.deepEqual(a.issues, [{ key: 'email.smtp.password', message: 'must be a string' }]);
    assert.ok(!a.message.includes('12345678'));
    const b = issuesOf(withSmtp({ host: 'h', port: 25, username: 'u', passwrod: 'hunter2-secret' }));
    assert.ok(!b.message.includes('hunter2-secret'), b.message);
    assert.ok(
      b.issues.some((i) => i.key === 'email.smtp.passwrod' && i.message.startsWith('is not a known key')),
    );
    assert.ok(b.issues.some((i) => i.key === 'email.smtp.password'));
  });

  it('rejects unknown keys inside email.smtp but allows them at the top level', () => {
    const { issues } = issuesOf(withSmtp({ host: 'h', port: 25, authentication: 'none', noVerifyTls: true }));
    assert.equal(issues.length, 1);
    assert.equal(issues[0]?.key, 'email.smtp.noVerifyTls');
    assert.match(issues[0]?.message ?? '', /^is not a known key \(known: .*noVerifyTLS/);
  });

  it('requires an absolute http(s) externalURL', () => {
    assert.deepEqual(issuesOf('{}').issues, [{ key: 'externalURL', message: 'is required' }]);
    for (const bad of ['/relative', 'ftp://example.com', 'not a url', '']) {
      assert.deepEqual(
        issuesOf(JSON.stringify({ externalURL: bad })).issues,
        [{ key: 'externalURL', message: 'must be an absolute http(s) URL' }],
        bad,
      );
    }
    assert.deepEqual(issuesOf(JSON.stringify({ externalURL: 42 })).issues[0]?.key, 'externalURL');
  });

  it('checks email.address, email.senderName, auth.providers and required smtp keys', () => {
    const { issues } = issuesOf(
      JSON.stringify({
        externalURL: 'https://x.example',
        'email.address': 'not an address',
        'email.senderName': 'Evil\r\nBcc: victim@example.com',
        'auth.providers': [{ type: 'builtin' }, { clientID: 'x' }],
        'email.smtp': { authentication: 'none' },
      }),
    );
    assert.deepEqual(
      issues.map((i) => `${i.key}: ${i.message}`).sort(),
      [
        'email.address: must be an email address such as noreply@example.com (contains whitespace)',
        'email.senderName: must be a one-line name',
        'email.smtp.host: is required',
        'email.smtp.port: is required',
        'auth.providers[1].type: is required',
      ].sort(),
    );
    assert.deepEqual(
      issuesOf(JSON.stringify({ externalURL: 'https://x.example', 'auth.providers': {} })).issues,
      [{ key: 'auth.providers', message: 'must be a list of auth providers' }],
    );
  });

  it('email.address follows the product grammar (contracts): refusals name the problem, IDN kept as A-labels', () => {
    const site = (address: string) =>
      JSON.stringify({ externalURL: 'https://x.example', 'email.address': address });
    for (const [bad, problem] of [
      ['a@b', /fully qualified domain/],
      ['"a b"@example.com', /quoted local parts/],
      ['a@[127.0.0.1]', /address literals/],
      ['no\u0000reply@example.com', /control character/],
      ['noreply@example.com\r\nBcc: x@y.example', /control character/],
    ] as const) {
      const { issues } = issuesOf(site(bad));
      assert.equal(issues.length, 1, bad);
      assert.equal(issues[0]?.key, 'email.address');
      assert.match(issues[0]?.message ?? '', /^must be an email address such as noreply@example\.com \(/);
      assert.match(issues[0]?.message ?? '', problem, bad);
    }
    assert.equal(
      parseSiteConfig(site('noreply@bücher.example'))['email.address'],
      'noreply@xn--bcher-kva.example',
    );
    assert.equal(parseSiteConfig(site('NoReply@Example.COM'))['email.address'], 'NoReply@example.com');
  });

  it('email.smtp.denyPrivateNetworks: optional, true or false', () => {
    const site = (value: unknown) =>
      JSON.stringify({ externalURL: 'https://x.example', 'email.smtp.denyPrivateNetworks': value });
    const config = parseSiteConfig(site(true)) as unknown as Record<string, unknown>;
    assert.equal(config['email.smtp.denyPrivateNetworks'], true);
    assert.deepEqual(issuesOf(site('yes')).issues, [
      { key: 'email.smtp.denyPrivateNetworks', message: 'must be true or false' },
    ]);
  });

  it('names line and column of a JSON syntax error', () => {
    const { issues, message } = issuesOf(
      '{\n  "externalURL": "https://x.example"\n  "email.address": "a@b.example"\n}',
    );
    assert.equal(issues[0]?.key, '');
    assert.match(message, /^invalid site config: JSON syntax error at line 3, column 3: CommaExpected/);
    assert.match(issuesOf('').message, /empty/);
    assert.match(issuesOf('[1]').message, /top level must be an object/);
  });
});

describe('redactSiteConfig', () => {
  it('replaces the SMTP password and any secret-named key, keeping the rest', () => {
    const config = parseSiteConfig(
      JSON.stringify({
        externalURL: 'https://x.example',
        'email.smtp': { host: 'h', port: 587, username: 'u', password: 'hunter2' },
        'auth.providers': [{ type: 'github', clientSecret: 'gh-secret' }, { type: 'builtin' }],
        'other.apiToken': 'tok',
      }),
    );
    const redacted = redactSiteConfig(config);
    assert.equal(redacted['email.smtp']?.password, REDACTED);
    assert.equal(redacted['email.smtp']?.username, 'u');
    assert.equal(redacted['auth.providers'][0]?.clientSecret, REDACTED);
    assert.equal((redacted as unknown as Record<string, unknown>)['other.apiToken'], REDACTED);
    assert.ok(!JSON.stringify(redacted).match(/hunter2|gh-secret|"tok"/));
    assert.equal(config['email.smtp']?.password, 'hunter2', 'the original is untouched');
  });
});

describe('staticSiteConfig', () => {
  it('validates with defaults and notifies listeners on set', () => {
    const source = staticSiteConfig({ 'email.address': 'a@b.example' });
    assert.equal(source.current().externalURL, 'http://localhost:3001');
    assert.deepEqual(source.current()['auth.providers'], [{ type: 'builtin' }]);
    assert.equal(smtpConfigured(source.current()), false);
    const seen: string[] = [];
    const off = source.onChange((c, prev) => seen.push(`${prev.externalURL} -> ${c.externalURL}`));
    source.set({ externalURL: 'https://a.example' });
    off();
    source.set({ externalURL: 'https://b.example' });
    assert.deepEqual(seen, ['http://localhost:3001 -> https://a.example']);
    assert.throws(() => source.set({ externalURL: 'nope' }), SiteConfigError);
    assert.equal(source.current().externalURL, 'https://b.example');
  });
});

describe('email.smtp LOGIN and XOAUTH2', () => {
  const oauth2 = {
    tokenURL: 'https://login.microsoftonline.com/tenant/oauth2/v2.0/token',
    clientID: 'app-id',
    clientSecret: 'cs-Zq9!',
    scope: 'https://outlook.office365.com/.default',
    grant: 'client_credentials',
  };
  const xoauth2 = (o: object, extra: object = {}) =>
    withSmtp({
      host: 'smtp.office365.com',
      port: 587,
      authentication: 'XOAUTH2',
      username: 'a@b.example',
      oauth2: o,
      ...extra,
    });

  it('accepts LOGIN with username and password, and XOAUTH2 with each grant', () => {
    const login = parseSiteConfig(
      withSmtp({ host: 'h', port: 587, authentication: 'LOGIN', username: 'u', password: 'p' }),
    );
    assert.equal(login['email.smtp']?.authentication, 'LOGIN');
    assert.equal(parseSiteConfig(xoauth2(oauth2))['email.smtp']?.oauth2?.grant, 'client_credentials');
    const { clientSecret: _, ...noSecret } = oauth2;
    parseSiteConfig(xoauth2({ ...noSecret, grant: 'refresh_token', refreshToken: 'rt' }));
    parseSiteConfig(
      xoauth2({
        ...noSecret,
        grant: 'jwt_bearer',
        privateKey: '-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n',
      }),
    );
  });

  it('LOGIN without a password names the key', () => {
    const { message } = issuesOf(withSmtp({ host: 'h', port: 587, authentication: 'LOGIN', username: 'u' }));
    assert.match(message, /email\.smtp\.password: is required when authentication is LOGIN/);
  });

  it('an incomplete oauth2 object is rejected naming the missing key, never quoting a secret', () => {
    const { clientID: _, ...noId } = oauth2;
    const a = issuesOf(xoauth2(noId));
    assert.deepEqual(a.issues, [{ key: 'email.smtp.oauth2.clientID', message: 'is required' }]);
    assert.ok(!a.message.includes('cs-Zq9!'));

    const b = issuesOf(xoauth2({ ...oauth2, grant: 'refresh_token' }));
    assert.deepEqual(b.issues, [
      { key: 'email.smtp.oauth2.refreshToken', message: 'is required when grant is refresh_token' },
    ]);

    const c = issuesOf(xoauth2({ ...oauth2, grant: 'jwt_bearer' }));
    assert.deepEqual(c.issues, [
      { key: 'email.smtp.oauth2.privateKey', message: 'is required when grant is jwt_bearer' },
    ]);

    const { clientSecret: __, ...noSecret } = oauth2;
    assert.match(
      issuesOf(xoauth2(noSecret)).message,
      /email\.smtp\.oauth2\.clientSecret: is required when grant is client_credentials/,
    );

    assert.match(
      issuesOf(xoauth2({ ...oauth2, grant: 'password' })).message,
      /email\.smtp\.oauth2\.grant: must be one of "client_credentials", "refresh_token", "jwt_bearer"/,
    );
    assert.match(
      issuesOf(xoauth2({ ...oauth2, tokenURL: 'http://idp.example/token' })).message,
      /email\.smtp\.oauth2\.tokenURL: must be an absolute https URL/,
    );
    parseSiteConfig(xoauth2({ ...oauth2, tokenURL: 'http://127.0.0.1:8080/token' }));
    parseSiteConfig(
      xoauth2({ ...oauth2, certificateThumbprint: 'A1B2C3D4E5F60718293A4B5C6D7E8F9012345678' }),
    );
    assert.match(
      issuesOf(xoauth2({ ...oauth2, certificateThumbprint: 'not-a-thumbprint' })).message,
      /email\.smtp\.oauth2\.certificateThumbprint: must be a SHA-1 thumbprint/,
    );
    assert.match(
      issuesOf(xoauth2({ ...oauth2, clientSecrt: 'x' })).message,
      /email\.smtp\.oauth2\.clientSecrt: is not a known key/,
    );
  });

  it('XOAUTH2 needs the mailbox (username) and the oauth2 object', () => {
    const noUser = issuesOf(withSmtp({ host: 'h', port: 587, authentication: 'XOAUTH2', oauth2 }));
    assert.match(noUser.message, /email\.smtp\.username: is required when authentication is XOAUTH2/);
    const noOauth = issuesOf(withSmtp({ host: 'h', port: 587, authentication: 'XOAUTH2', username: 'u' }));
    assert.deepEqual(noOauth.issues, [
      { key: 'email.smtp.oauth2', message: 'is required when authentication is XOAUTH2' },
    ]);
  });

  it('redaction: clientSecret, refreshToken and privateKey read REDACTED; tokenURL, clientID, scope stay', () => {
    const config = parseSiteConfig(
      xoauth2({
        ...oauth2,
        refreshToken: 'rt-secret',
        privateKey: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----',
      }),
    );
    const shown = redactSiteConfig(config)['email.smtp']?.oauth2;
    assert.equal(shown?.clientSecret, REDACTED);
    assert.equal(shown?.refreshToken, REDACTED);
    assert.equal(shown?.privateKey, REDACTED);
    assert.equal(shown?.tokenURL, oauth2.tokenURL);
    assert.equal(shown?.clientID, 'app-id');
    assert.equal(shown?.scope, oauth2.scope);
  });
});
