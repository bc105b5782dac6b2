import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { smtpReplyClass } from './metrics.ts';

describe('smtpReplyClass', () => {
  const at = { startedAt: new Date(0), finishedAt: new Date(5) };
  it('classes an answer by its reply code, a failure without one as connection, and no send as nothing', () => {
    const cases: [Parameters<typeof smtpReplyClass>[0], string | undefined][] = [
      [{ ...at, status: 'sent' }, '2xx'],
      [{ ...at, status: 'deferred', step: 'envelope', responseCode: 450 }, '4xx'],
      [{ ...at, status: 'throttled', step: 'envelope', responseCode: 421 }, '4xx'],
      [{ ...at, status: 'failed', step: 'data', responseCode: 554 }, '5xx'],
      [{ ...at, status: 'deferred', step: 'connect' }, 'connection'],
      [{ ...at, status: 'deferred', step: 'tls' }, 'connection'],
      [{ ...at, status: 'failed', step: 'render' }, undefined],
      [{ ...at, status: 'failed', step: 'link-expired' }, undefined],
      [{ ...at, status: 'deferred', step: 'config' }, undefined],
    ];
    for (const [outcome, expected] of cases)
      assert.equal(smtpReplyClass(outcome), expected, JSON.stringify(outcome));
  });
});
