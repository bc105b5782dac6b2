import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import { EmailAddressInput, parseEmailAddress } from './address.ts';

const accepted: [string, string][] = [
  ['alice@example.com', 'alice@example.com'],
  ['Alice.Smith+tag@Sub.Example.CO.uk', 'Alice.Smith+tag@sub.example.co.uk'],
  ["o'brien_{x}@example.org", "o'brien_{x}@example.org"],
  ['user@exämple.com', 'user@xn--exmple-cua.com'],
  ['user@xn--exmple-cua.com', 'user@xn--exmple-cua.com'],
  ['user@例え.jp', 'user@xn--r8jz45g.jp'],
];

const refused: [string, RegExp][] = [
  ['a@b', /fully qualified domain/],
  ['a@localhost', /fully qualified domain/],
  ['"a b"@example.com', /quoted local parts/],
  ['a@[127.0.0.1]', /address literals/],
  ['ü@example.com', /SMTPUTF8/],
  ['a\u0000b@example.com', /control character/],
  ['a@example.com\r\nBcc: x@example.com', /control character/],
  ['a b@example.com', /whitespace/],
  [' a@example.com', /whitespace/],
  ['a@b@example.com', /more than one @/],
  ['example.com', /has no @/],
  ['@example.com', /nothing before the @/],
  ['a..b@example.com', /not a valid email address/],
  ['.a@example.com', /not a valid email address/],
  ['a@example.123', /not a valid/],
  ['a@-example.com', /not a valid email address/],
  [`${'x'.repeat(65)}@example.com`, /more than 64/],
  [`a@${Array.from({ length: 5 }, () => 'd'.repeat(60)).join('.')}.com`, /longer than 254|not a valid/],
  ['', /is empty/],
];

describe('the product address grammar', () => {
  for (const [input, canonical] of accepted) {
    it(`accepts ${JSON.stringify(input)} as ${canonical}`, () => {
      assert.deepEqual(parseEmailAddress(input), { ok: true, address: canonical });
    });
  }
  for (const [input, problem] of refused) {
    it(`refuses ${JSON.stringify(input)}`, () => {
      const parsed = parseEmailAddress(input);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.problem, problem);
    });
  }

  it('is the format of EmailAddressInput, so HTTP schemas refuse what the parser refuses', () => {
    const check = Compile(Type.Object({ to: EmailAddressInput }));
    assert.equal(check.Check({ to: 'user@exämple.com' }), true);
    assert.equal(check.Check({ to: 'a@b' }), false);
    assert.equal(check.Check({ to: 'a\u0000@example.com' }), false);
    assert.equal(check.Check({ to: '"a b"@example.com' }), false);
  });
});
