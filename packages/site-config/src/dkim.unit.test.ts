import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseSiteConfig, REDACTED, redactSiteConfig, SiteConfigError } from './index.ts';

const rsa = (bits: number, type: 'pkcs8' | 'pkcs1' = 'pkcs8') =>
  generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type, format: 'pem' }) as string;
const pkcs8 = rsa(2048);
const withDkim = (dkim: unknown) =>
  JSON.stringify({ externalURL: 'https://sg.example.com', 'email.dkim': dkim });
const issuesOf = (text: string) => {
  try {
    parseSiteConfig(text);
  } catch (err) {
    assert.ok(err instanceof SiteConfigError, String(err));
    return { issues: err.issues, message: err.message };
  }
  assert.fail('expected a SiteConfigError');
};

describe('email.dkim', () => {
  it('reads domainName, keySelector and an RSA key (PKCS#8 or PKCS#1)', () => {
    const c = parseSiteConfig(
      withDkim({ domainName: 'example.com', keySelector: 'mail', privateKey: pkcs8 }),
    );
    assert.deepEqual(c['email.dkim'], { domainName: 'example.com', keySelector: 'mail', privateKey: pkcs8 });
    const pkcs1 = rsa(1024, 'pkcs1');
    assert.equal(
      parseSiteConfig(
        withDkim({ domainName: 'mail.example.com', keySelector: 's1.2026', privateKey: pkcs1 }),
      )['email.dkim']?.privateKey,
      pkcs1,
    );
  });

  it('is optional', () => {
    assert.equal(parseSiteConfig(withDkim(undefined))['email.dkim'], undefined);
  });

  const bad: [string, unknown, string, RegExp][] = [
    ['not an object', 'yes', 'email.dkim', /must be an object with domainName, keySelector and privateKey/],
    [
      'a missing selector',
      { domainName: 'example.com', privateKey: pkcs8 },
      'email.dkim.keySelector',
      /is required/,
    ],
    [
      'a typo',
      { domainName: 'example.com', keySelector: 'mail', privateKey: pkcs8, selector: 'x' },
      'email.dkim.selector',
      /is not a known key/,
    ],
    [
      'a domain with a space',
      { domainName: 'example .com', keySelector: 'mail', privateKey: pkcs8 },
      'email.dkim.domainName',
      /must be a domain name/,
    ],
    [
      'a bare label',
      { domainName: 'localhost', keySelector: 'mail', privateKey: pkcs8 },
      'email.dkim.domainName',
      /must be a domain name/,
    ],
    [
      'a selector with a semicolon',
      { domainName: 'example.com', keySelector: 'a;b=c', privateKey: pkcs8 },
      'email.dkim.keySelector',
      /must be a selector/,
    ],
    [
      'a key that is not PEM',
      { domainName: 'example.com', keySelector: 'mail', privateKey: 'hunter2-not-a-key' },
      'email.dkim.privateKey',
      /must be an RSA private key in PEM/,
    ],
    [
      'REDACTED as the saved key',
      { domainName: 'example.com', keySelector: 'mail', privateKey: REDACTED },
      'email.dkim.privateKey',
      /must be an RSA private key in PEM/,
    ],
    [
      'an Ed25519 key',
      {
        domainName: 'example.com',
        keySelector: 'mail',
        privateKey: generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }),
      },
      'email.dkim.privateKey',
      /RSA private key \(nodemailer signs rsa-sha256\), not ed25519/,
    ],
    [
      'a 512-bit key',
      { domainName: 'example.com', keySelector: 'mail', privateKey: rsa(512) },
      'email.dkim.privateKey',
      /at least 1024 bits.*not 512/,
    ],
  ];
  for (const [what, dkim, key, problem] of bad) {
    it(`refuses ${what}, naming ${key} and never quoting the key`, () => {
      const { issues, message } = issuesOf(withDkim(dkim));
      const issue = issues.find((i) => i.key === key);
      assert.ok(issue, JSON.stringify(issues));
      assert.match(issue.message, problem);
      assert.equal(message.includes('PRIVATE KEY-----\n'), false);
      assert.equal(message.includes('hunter2'), false);
    });
  }

  it('the private key reads REDACTED when the config is shown; the domain and selector stay', () => {
    const c = parseSiteConfig(
      withDkim({ domainName: 'example.com', keySelector: 'mail', privateKey: pkcs8 }),
    );
    assert.deepEqual(redactSiteConfig(c)['email.dkim'], {
      domainName: 'example.com',
      keySelector: 'mail',
      privateKey: REDACTED,
    });
    assert.equal(JSON.stringify(redactSiteConfig(c)).includes('PRIVATE KEY'), false);
    assert.equal(c['email.dkim']?.privateKey, pkcs8, 'the copy only');
  });
});
