import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { apiKeyChallenge, parseAuthorization } from './authorization.ts';

const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

describe('parseAuthorization', () => {
  it('reads an API key sent as token or Bearer, any case, trimmed', () => {
    for (const header of ['token sk_1', 'Bearer sk_1', 'BEARER   sk_1  ', 'Token sk_1', '  token sk_1'])
      assert.deepEqual(parseAuthorization(header), { kind: 'apiKey', key: 'sk_1' }, header);
  });
  it('is none without a header', () => {
    assert.deepEqual(parseAuthorization(undefined), { kind: 'none' });
    assert.deepEqual(parseAuthorization('   '), { kind: 'none' });
  });
  it('refuses a scheme without a key, or two keys', () => {
    assert.equal(parseAuthorization('token').kind, 'malformed');
    assert.equal(parseAuthorization('Bearer   ').kind, 'malformed');
    assert.equal(parseAuthorization('token a b').kind, 'malformed');
    assert.equal(parseAuthorization(['token a', 'token b']).kind, 'malformed');
  });
  it('decodes Basic username and password (the password may hold colons)', () => {
    assert.deepEqual(parseAuthorization(basic('alice:pa:ss')), {
      kind: 'basic',
      username: 'alice',
      password: 'pa:ss',
    });
    assert.deepEqual(parseAuthorization(`basic ${Buffer.from('a@b.example:x').toString('base64')}`), {
      kind: 'basic',
      username: 'a@b.example',
      password: 'x',
    });
  });
  it('refuses Basic that is not base64 of user:password, without echoing it', () => {
    for (const header of [basic('nocolon'), basic(':pw'), 'Basic !!!', 'Basic']) {
      const parsed = parseAuthorization(header);
      assert.equal(parsed.kind, 'malformed', header);
      assert.ok(parsed.kind === 'malformed' && !parsed.reason.includes('nocolon'));
    }
  });
  it('names an unsupported scheme', () => {
    assert.deepEqual(parseAuthorization('Digest abc'), { kind: 'unsupported', scheme: 'Digest' });
    assert.deepEqual(parseAuthorization('sk_just_a_key'), { kind: 'unsupported', scheme: 'sk_just_a_key' });
  });
  it('builds the 401 challenge listing both API-key schemes', () => {
    assert.equal(apiKeyChallenge({ realm: 'x' }), 'token realm="x", Bearer realm="x"');
    assert.match(apiKeyChallenge({ realm: 'x', basic: true }), /, Basic realm="x"$/);
  });
});
