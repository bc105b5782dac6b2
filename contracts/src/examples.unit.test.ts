import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeEvent,
  eventSchemas,
  examples,
  generateLinkTokenKey,
  mayIgnoreUnknownType,
  openToken,
  parseLinkTokenKey,
  sealToken,
  topics,
  toWireMessage,
  validateEvent,
} from './index.ts';

describe('contract examples', () => {
  it('has one example per event type, and each validates', () => {
    assert.deepEqual(Object.keys(examples).sort(), Object.keys(eventSchemas).sort());
    for (const [type, example] of Object.entries(examples)) {
      assert.equal(example.type, type);
      assert.deepEqual(validateEvent(example), [], `${type} example should validate`);
    }
  });

  it('rejects a broken example, naming the field', () => {
    const broken = { ...examples.UserCreated, data: { ...examples.UserCreated.data, email: 42 } };
    const problems = validateEvent(broken);
    assert.ok(
      problems.some((p) => p.path === '/data/email'),
      JSON.stringify(problems),
    );
    assert.ok(validateEvent({ ...examples.ApiKeyCreated, position: 0 }).some((p) => p.path === '/position'));
  });

  it('rejects an unknown type and non-JSON', () => {
    assert.deepEqual(decodeEvent('{"type":"Nope"}'), {
      ok: false,
      problems: [{ path: '/type', message: 'unknown event type "Nope"' }],
    });
    assert.equal(decodeEvent('{not json').ok, false);
    assert.equal(decodeEvent(null).ok, false);
  });

  it('reports a well-formed envelope of a type it does not know as unknownType, and only that', () => {
    const later = { ...examples.UserDeleted, type: 'UserRenamed', data: { anything: 1 } };
    const result = decodeEvent(JSON.stringify(later));
    assert.deepEqual(result, {
      ok: false,
      problems: [{ path: '/type', message: 'unknown event type "UserRenamed"' }],
      unknownType: 'UserRenamed',
    });
    const noEnvelope = decodeEvent(JSON.stringify({ ...later, userId: 'not-a-uuid' }));
    assert.equal(noEnvelope.ok, false);
    assert.equal(!noEnvelope.ok && noEnvelope.unknownType, undefined);
  });

  it("a consumer may skip an unknown type only from the topic's owner, with ce_type agreeing", () => {
    const later = { ...examples.UserDeleted, type: 'UserRenamed', data: {} };
    const wire = toWireMessage(later as unknown as typeof examples.UserDeleted);
    const result = decodeEvent(wire.value);
    assert.equal(mayIgnoreUnknownType(topics.accountsEvents, wire.headers, result), true);
    const fromElsewhere = { ...wire.headers, ce_source: '/services/code-monitoring' };
    assert.equal(mayIgnoreUnknownType(topics.accountsEvents, fromElsewhere, result), false);
    const otherType = { ...wire.headers, ce_type: 'UserCreated' };
    assert.equal(mayIgnoreUnknownType(topics.accountsEvents, otherType, result), false);
    assert.equal(mayIgnoreUnknownType(topics.codeMonitoringEvents, wire.headers, result), false);
    assert.equal(mayIgnoreUnknownType('somebody.else.v1', wire.headers, result), false);
    const known = decodeEvent(toWireMessage(examples.UserDeleted).value);
    assert.equal(known.ok, true);
    assert.equal(mayIgnoreUnknownType(topics.accountsEvents, wire.headers, known), false);
  });

  it('round-trips through the wire format with CloudEvents headers, keyed by user', () => {
    const msg = toWireMessage(examples.EmailVerified);
    assert.equal(msg.key, examples.EmailVerified.userId);
    assert.equal(msg.headers.ce_type, 'EmailVerified');
    assert.equal(msg.headers.ce_id, examples.EmailVerified.id);
    assert.equal(msg.headers['content-type'], 'application/json');
    assert.deepEqual(decodeEvent(msg.value), { ok: true, event: examples.EmailVerified });
  });
});

describe('sealed link tokens', () => {
  const key = parseLinkTokenKey(generateLinkTokenKey('test'));
  it('opens what it sealed, only for the same user and event type', () => {
    const sealed = sealToken('s3cret-token', key, 'u1', 'EmailVerificationRequested');
    assert.ok(!JSON.stringify(sealed).includes('s3cret-token'));
    assert.equal(openToken(sealed, key, 'u1', 'EmailVerificationRequested'), 's3cret-token');
    assert.throws(() => openToken(sealed, key, 'u2', 'EmailVerificationRequested'));
    assert.throws(() => openToken(sealed, key, 'u1', 'PasswordResetRequested'));
    assert.throws(() =>
      openToken(sealed, parseLinkTokenKey(generateLinkTokenKey('test')), 'u1', 'EmailVerificationRequested'),
    );
  });
  it('rejects a malformed key without printing it', () => {
    assert.throws(() => parseLinkTokenKey('k:AAAA'), /32 bytes of key, not 3/);
    assert.throws(() => parseLinkTokenKey('nocolon'), /LINK_TOKEN_KEY must read/);
  });
});

describe('links', () => {
  it('builds links under externalURL, keeping its path and encoding parameters', async () => {
    const { buildLink } = await import('./links.ts');
    assert.equal(
      buildLink('https://sg.example.com/', 'verifyEmail', { code: 'a b&c', email: 'x@y.example' }),
      'https://sg.example.com/-/verify-email?code=a+b%26c&email=x%40y.example',
    );
    assert.equal(
      buildLink('https://h.example/base', 'passwordReset', { code: 'z' }),
      'https://h.example/base/password-reset?code=z',
    );
  });
});
