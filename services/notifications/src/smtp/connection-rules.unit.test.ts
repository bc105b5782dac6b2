import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { describe, test } from 'node:test';
import type { SmtpConfig } from '@sitemail/site-config';
import {
  connectionPlan,
  credentialsNeedTls,
  ehloName,
  implicitTls,
  isLoopbackHost,
  smtpConfigKey,
} from './connection-rules.ts';

const iface = (address: string, family: 'IPv4' | 'IPv6', internal = false): NetworkInterfaceInfo =>
  ({ address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 }) as NetworkInterfaceInfo;

const machine = {
  hostname: 'vm',
  interfaces: {
    lo: [iface('127.0.0.1', 'IPv4', true), iface('::1', 'IPv6', true)],
    eth0: [iface('192.0.2.2', 'IPv4')],
  },
};

const smtp = (over: Partial<SmtpConfig> = {}): SmtpConfig => ({
  authentication: 'PLAIN',
  username: 'u',
  password: 'p',
  host: 'smtp.example.com',
  port: 587,
  noVerifyTLS: false,
  ...over,
});

describe('SMTP connection policy', () => {
  test('implicit TLS is decided by port 465 alone', () => {
    assert.equal(implicitTls(465), true);
    for (const port of [25, 587, 2525, 4650, 0]) assert.equal(implicitTls(port), false, String(port));
    assert.equal(connectionPlan(smtp({ port: 465 }), machine).secure, true);
    assert.equal(connectionPlan(smtp({ port: 587 }), machine).secure, false);
  });

  test('loopback: localhost, 127.0.0.0/8, ::1 and mapped forms; nothing else', () => {
    for (const h of [
      'localhost',
      'LOCALHOST',
      'localhost.',
      'mail.localhost',
      '127.0.0.1',
      '127.1.2.3',
      '::1',
      '[::1]',
    ]) {
      assert.equal(isLoopbackHost(h), true, h);
    }
    for (const h of ['::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of [
      '192.0.2.2',
      '10.0.0.1',
      'smtp.example.com',
      'localhost.example.com',
      '128.0.0.1',
      '::2',
      'vm',
    ]) {
      assert.equal(isLoopbackHost(h), false, h);
    }
  });

  test('credentials need TLS toward any non-loopback host, unless port 465 already is TLS', () => {
    assert.equal(credentialsNeedTls(smtp()), true);
    assert.equal(credentialsNeedTls(smtp({ authentication: 'CRAM-MD5' })), true);
    assert.equal(credentialsNeedTls(smtp({ authentication: 'LOGIN' })), true);
    assert.equal(credentialsNeedTls(smtp({ authentication: 'XOAUTH2' })), true);
    assert.equal(credentialsNeedTls(smtp({ authentication: 'XOAUTH2', host: 'localhost' })), false);
    assert.equal(credentialsNeedTls(smtp({ authentication: 'none' })), false);
    assert.equal(credentialsNeedTls(smtp({ host: '127.0.0.1' })), false);
    assert.equal(credentialsNeedTls(smtp({ port: 465 })), false);
    assert.equal(connectionPlan(smtp(), machine).requireTLS, true);
  });

  test('EHLO name: domain, else an FQDN host name, else an address literal; never bare localhost', () => {
    assert.equal(ehloName('mail.example.com', 'vm', machine.interfaces), 'mail.example.com');
    assert.equal(ehloName('  ', 'host.example.org', machine.interfaces), 'host.example.org');
    assert.equal(ehloName(undefined, 'vm', machine.interfaces), '[192.0.2.2]');
    assert.equal(ehloName(undefined, 'localhost', machine.interfaces), '[192.0.2.2]');
    assert.equal(ehloName(undefined, 'localhost.localdomain', machine.interfaces), '[192.0.2.2]');
    assert.equal(ehloName(undefined, 'localhost', { lo: machine.interfaces.lo }), '[127.0.0.1]');
    assert.equal(
      ehloName(undefined, 'vm', { eth0: [iface('2001:db8::5', 'IPv6'), iface('fe80::1', 'IPv6')] }),
      '[IPv6:2001:db8::5]',
    );
    assert.equal(connectionPlan(smtp({ domain: 'example.com' }), machine).name, 'example.com');
  });

  test('noVerifyTLS turns certificate verification off, and only it', () => {
    assert.equal(connectionPlan(smtp(), machine).tls.rejectUnauthorized, true);
    assert.equal(connectionPlan(smtp({ noVerifyTLS: true }), machine).tls.rejectUnauthorized, false);
  });

  test('the auth mechanism follows email.smtp.authentication', () => {
    assert.equal(connectionPlan(smtp(), machine).authMethod, 'PLAIN');
    assert.equal(connectionPlan(smtp({ authentication: 'CRAM-MD5' }), machine).authMethod, 'CRAM-MD5');
    assert.equal(connectionPlan(smtp({ authentication: 'LOGIN' }), machine).authMethod, 'LOGIN');
    assert.equal(connectionPlan(smtp({ authentication: 'XOAUTH2' }), machine).authMethod, 'XOAUTH2');
    assert.equal(connectionPlan(smtp({ authentication: 'none' }), machine).authMethod, undefined);
  });

  test('config key changes with every connection-shaping key and hides the password', () => {
    const base = smtpConfigKey(smtp());
    assert.equal(smtpConfigKey(smtp()), base);
    for (const change of [
      { host: 'other.example.com' },
      { port: 2525 },
      { authentication: 'CRAM-MD5' as const },
      { username: 'v' },
      { password: 'q' },
      { domain: 'example.com' },
      { noVerifyTLS: true },
      { authentication: 'LOGIN' as const },
      {
        oauth2: {
          tokenURL: 'https://idp.example/token',
          clientID: 'c',
          clientSecret: 'oauth-secret',
          grant: 'client_credentials' as const,
        },
      },
    ]) {
      assert.notEqual(smtpConfigKey(smtp(change)), base, JSON.stringify(change));
    }
    assert.ok(!smtpConfigKey(smtp({ password: 'visible-secret' })).includes('visible-secret'));
    const rotated = (clientSecret: string) =>
      smtpConfigKey(
        smtp({
          oauth2: {
            tokenURL: 'https://idp.example/t',
            clientID: 'c',
            clientSecret,
            grant: 'client_credentials',
          },
        }),
      );
    assert.notEqual(rotated('one'), rotated('two'), 'a rotated client secret builds a new pool');
  });
});
