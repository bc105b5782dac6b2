import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkHeaderFields } from './test-email-input.ts';

describe('test email input', () => {
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
});
