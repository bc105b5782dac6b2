import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EnvError, envVar, parseTrustProxy, readEnv, readServiceEnv } from './env.ts';

const key = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
const fails = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof EnvError && pattern.test(err.message));

describe('readEnv', () => {
  it('reads ports, with defaults when unset or empty', () => {
    const spec = { port: envVar.port('PORT', 3001) };
    assert.deepEqual(readEnv({}, spec), { port: 3001 });
    assert.deepEqual(readEnv({ PORT: '' }, spec), { port: 3001 });
    assert.deepEqual(readEnv({ PORT: ' 0 ' }, spec), { port: 0 });
    assert.deepEqual(readEnv({ PORT: '65535' }, spec), { port: 65535 });
  });
  it('names the variable and the problem of a bad port', () => {
    for (const bad of ['abc', '65536', '-1', '3.5', '1e3'])
      fails(
        () => readEnv({ ACCOUNTS_PORT: bad }, { p: envVar.port('ACCOUNTS_PORT', 1) }),
        /^ACCOUNTS_PORT must be a port number from 0 to 65535, not "/,
      );
  });
  it('reports every bad variable at once', () => {
    const spec = { a: envVar.port('A_PORT', 1), b: envVar.port('B_PORT', 2) };
    fails(() => readEnv({ A_PORT: 'x', B_PORT: 'y' }, spec), /A_PORT .*; B_PORT /);
  });
  it('reads a service’s own number, with bounds', () => {
    const spec = { hours: envVar.number('AWAIT_RECIPIENT_HOURS', { min: 0 }) };
    assert.deepEqual(readEnv({}, spec), { hours: undefined });
    assert.deepEqual(readEnv({ AWAIT_RECIPIENT_HOURS: '0.5' }, spec), { hours: 0.5 });
    fails(
      () => readEnv({ AWAIT_RECIPIENT_HOURS: '-1' }, spec),
      /^AWAIT_RECIPIENT_HOURS must be a number >= 0, not "-1"$/,
    );
    fails(() => readEnv({ AWAIT_RECIPIENT_HOURS: 'soon' }, spec), /AWAIT_RECIPIENT_HOURS must be a number/);
  });
});

describe('TRUST_PROXY', () => {
  it('is off unless set', () => {
    assert.equal(parseTrustProxy(undefined), false);
    assert.equal(parseTrustProxy('false'), false);
    assert.equal(parseTrustProxy('TRUE'), true);
    assert.equal(parseTrustProxy('2'), 2);
    assert.deepEqual(parseTrustProxy('10.0.0.1, 10.1.0.0/16,::1'), ['10.0.0.1', '10.1.0.0/16', '::1']);
  });
  it('refuses what is not an address or CIDR, naming it', () => {
    assert.throws(() => parseTrustProxy('10.0.0.1,proxy.local'), /not an address: proxy\.local/);
    assert.throws(() => parseTrustProxy('10.0.0.0/33'), /not an address: 10\.0\.0\.0\/33/);
  });
});

describe('readServiceEnv', () => {
  it('has embedded defaults: PGlite and the in-process bus under the data dir, a key kept there', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'kit-env-'));
    const env = readServiceEnv(
      { DATA_DIR: dataDir },
      { root: '/repo', extra: { port: envVar.port('PORT', 3001) } },
    );
    assert.equal(env.port, 3001);
    assert.equal(env.host, '127.0.0.1');
    assert.equal(env.databaseUrl, undefined);
    assert.equal(env.kafkaBrokers, undefined);
    assert.equal(env.logLevel, 'info');
    assert.equal(env.trustProxy, false);
    assert.equal(env.siteConfigPath, '/repo/config/site-config.jsonc');
    assert.deepEqual(env.database('accounts'), {
      dataDir: join(dataDir, 'pglite'),
      schema: 'accounts',
      legacyDataDir: join(dataDir, 'accounts'),
    });
    assert.equal(env.linkTokenKey.key.length, 32);
    const again = readServiceEnv({ DATA_DIR: dataDir }, { root: '/repo' });
    assert.deepEqual(again.linkTokenKey, env.linkTokenKey);
  });
  it('switches to Postgres and Kafka when set', () => {
    const env = readServiceEnv(
      {
        DATABASE_URL: 'postgres://x@h/db',
        KAFKA_BROKERS: 'a:9092, b:9092',
        LINK_TOKEN_KEY: key,
        LOG_LEVEL: 'debug',
      },
      { root: '/repo' },
    );
    assert.deepEqual(env.kafkaBrokers, ['a:9092', 'b:9092']);
    assert.deepEqual(env.database('notifications'), { url: 'postgres://x@h/db', schema: 'notifications' });
    assert.equal(env.logLevel, 'debug');
  });
  it('names LOG_LEVEL and the levels it takes', () => {
    fails(
      () => readServiceEnv({ LOG_LEVEL: 'loud', LINK_TOKEN_KEY: key }, { root: '/r' }),
      /^LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, not "loud"$/,
    );
  });
  it('requires LINK_TOKEN_KEY with Kafka, and never prints a bad key', () => {
    fails(
      () => readServiceEnv({ KAFKA_BROKERS: 'a:9092' }, { root: '/r' }),
      /LINK_TOKEN_KEY is required with KAFKA_BROKERS/,
    );
    const secret = 'k1:c2VjcmV0LWJ1dC1zaG9ydA==';
    assert.throws(
      () => readServiceEnv({ LINK_TOKEN_KEY: secret, DATA_DIR: '/nonexistent-kit' }, { root: '/r' }),
      (err: unknown) =>
        err instanceof EnvError && /LINK_TOKEN_KEY/.test(err.message) && !err.message.includes('c2VjcmV0'),
    );
  });
});
