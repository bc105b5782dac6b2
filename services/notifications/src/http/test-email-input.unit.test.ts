import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { describeValidationError } from './test-email-input.ts';

// The wording an admin reads for a body the schema refuses: it names the field every time.
describe('test email input wording', () => {
  test('an unknown field is named with its path', () => {
    const got = describeValidationError([
      { keyword: 'additionalProperties', instancePath: '/smtp', params: { additionalProperties: ['hots'] } },
    ]);
    assert.deepEqual(got, { field: 'smtp.hots', message: 'unknown field "smtp.hots"' });
  });

  test('a missing field is named', () => {
    const got = describeValidationError([
      { keyword: 'required', instancePath: '', params: { requiredProperties: ['to'] } },
    ]);
    assert.deepEqual(got, { field: 'to', message: 'missing field "to"' });
  });

  test('a wrong type and a bound say what was expected', () => {
    assert.deepEqual(
      describeValidationError([{ keyword: 'type', instancePath: '/smtp/port', params: { type: 'integer' } }]),
      { field: 'smtp.port', message: 'invalid "smtp.port": must be an integer' },
    );
    assert.deepEqual(
      describeValidationError([
        { keyword: 'maximum', instancePath: '/smtp/port', params: { comparison: '<=', limit: 65535 } },
      ]),
      { field: 'smtp.port', message: 'invalid "smtp.port": must be <= 65535' },
    );
  });

  test('a body that is not an object is said so', () => {
    assert.deepEqual(
      describeValidationError([{ keyword: 'type', instancePath: '', params: { type: 'object' } }]),
      {
        message: 'the request body must be a JSON object',
      },
    );
  });
});
