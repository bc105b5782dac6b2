import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  credentialSecrets,
  type ErrorContext,
  isThrottlingReply,
  scrubSecrets,
  stepOf,
  toSmtpSendError,
} from './errors.ts';
import { SmtpSendError } from './types.ts';

const ctx = (over: Partial<ErrorContext> = {}): ErrorContext => ({
  host: 'smtp.example.com',
  port: 587,
  credentialsNeedTls: false,
  timeouts: { connectionMs: 1000, greetingMs: 2000, socketMs: 3000 },
  secrets: credentialSecrets('alice', 'pa55-word'),
  ...over,
});

describe('SMTP error classification', () => {
  test('step from the command nodemailer was running', () => {
    assert.equal(stepOf({ code: 'ESOCKET', command: 'CONN' }), 'connect');
    assert.equal(stepOf({ code: 'EPROTOCOL', command: 'EHLO' }), 'ehlo');
    assert.equal(stepOf({ code: 'ETLS', command: 'STARTTLS' }), 'tls');
    assert.equal(
      stepOf({ code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', command: 'CONN' }),
      'tls',
    );
    assert.equal(stepOf({ code: 'EAUTH', command: 'AUTH PLAIN' }), 'auth');
    assert.equal(stepOf({ code: 'EENVELOPE', command: 'MAIL FROM' }), 'envelope');
    assert.equal(stepOf({ code: 'EENVELOPE', command: 'RCPT TO' }), 'envelope');
    assert.equal(stepOf({ code: 'EMESSAGE', command: 'DATA' }), 'data');
  });

  test('a timeout or drop is placed at the last command sent on that connection', () => {
    assert.equal(stepOf({ code: 'ETIMEDOUT', command: 'CONN' }), 'connect');
    assert.equal(stepOf({ code: 'ETIMEDOUT', command: 'CONN', lastCommand: 'DATA' }), 'data');
    assert.equal(stepOf({ code: 'ECONNECTION', command: 'CONN', lastCommand: 'EHLO' }), 'ehlo');
    assert.equal(stepOf({ code: 'ECONNECTION', command: 'CONN', lastCommand: 'AUTH' }), 'auth');
  });

  test('a greeting that is not SMTP is reported as such, its bytes never repeated; an SMTP refusal is', () => {
    for (const banner of ['SSH-2.0-OpenSSH_9.6 secret', '-ERR unknown command', 'HTTP/1.1 400 Bad Request']) {
      const err = toSmtpSendError(
        {
          code: 'EPROTOCOL',
          command: 'CONN',
          response: banner,
          message: `Invalid greeting. response=${banner}`,
        },
        ctx(),
      );
      assert.equal(err.message, 'mail: the server at smtp.example.com:587 did not answer as an SMTP server');
      assert.equal(err.smtpResponse, undefined);
      assert.equal(err.responseCode, undefined);
      assert.equal(err.step, 'connect');
    }
    const refused = toSmtpSendError(
      { code: 'EPROTOCOL', command: 'CONN', response: '554 5.7.1 no service for you', responseCode: 554 },
      ctx(),
    );
    assert.equal(refused.message, 'mail: 554 5.7.1 no service for you');
    assert.equal(refused.responseCode, 554);
  });

  test('5xx replies are permanent, 4xx and connection failures transient; the reply is the message', () => {
    const five = toSmtpSendError(
      {
        code: 'EAUTH',
        command: 'AUTH PLAIN',
        response: '535 5.7.8 Authentication failed',
        responseCode: 535,
      },
      ctx(),
    );
    assert.ok(five instanceof SmtpSendError);
    assert.deepEqual(
      [five.message, five.step, five.permanent, five.responseCode],
      ['mail: 535 5.7.8 Authentication failed', 'auth', true, 535],
    );
    const four = toSmtpSendError(
      { code: 'EENVELOPE', command: 'RCPT TO', response: '451 4.3.0 Try later', responseCode: 451 },
      ctx(),
    );
    assert.deepEqual([four.permanent, four.step], [false, 'envelope']);
    const refused = toSmtpSendError(
      {
        code: 'ESOCKET',
        originalCode: 'ECONNREFUSED',
        command: 'CONN',
        message: 'connect ECONNREFUSED 127.0.0.1:2526',
      },
      ctx(),
    );
    assert.deepEqual(
      [refused.message, refused.permanent, refused.step, refused.responseCode],
      ['mail: connect ECONNREFUSED 127.0.0.1:2526', false, 'connect', undefined],
    );
  });

  test('multi-line replies become one line', () => {
    const e = toSmtpSendError(
      { command: 'DATA', response: '554-5.7.1 Rejected\n554 5.7.1 see https://x', responseCode: 554 },
      ctx(),
    );
    assert.equal(e.message, 'mail: 554-5.7.1 Rejected 554 5.7.1 see https://x');
  });

  test('timeouts say which wait ran out', () => {
    const greet = toSmtpSendError(
      { code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT', command: 'CONN' },
      ctx(),
    );
    assert.equal(greet.message, 'mail: no greeting from smtp.example.com:587 within 2000 ms');
    const conn = toSmtpSendError(
      { code: 'ETIMEDOUT', timeoutType: 'CONNECT_TIMEOUT', command: 'CONN' },
      ctx(),
    );
    assert.equal(conn.message, 'mail: connection to smtp.example.com:587 timed out after 1000 ms');
    const data = toSmtpSendError(
      { code: 'ETIMEDOUT', timeoutType: 'SOCKET_TIMEOUT', command: 'CONN', lastCommand: 'DATA' },
      ctx(),
    );
    assert.deepEqual(
      [data.message, data.step, data.permanent],
      ['mail: no reply from smtp.example.com:587 within 3000 ms (after DATA)', 'data', false],
    );
  });

  test('a refused STARTTLS when credentials need TLS says so', () => {
    const e = toSmtpSendError(
      {
        code: 'ETLS',
        command: 'STARTTLS',
        response: '500 5.5.1 Error: command not recognized',
        responseCode: 500,
      },
      ctx({ credentialsNeedTls: true }),
    );
    assert.equal(
      e.message,
      'mail: refusing to send credentials in clear text to smtp.example.com: the server did not start TLS (500 5.5.1 Error: command not recognized)',
    );
    assert.equal(e.step, 'tls');
  });

  test('guards of the mailer keep their own step and permanence', () => {
    const e = toSmtpSendError(
      {
        message: 'the server does not offer AUTH CRAM-MD5 (it offers PLAIN)',
        guard: { step: 'auth', permanent: true },
      },
      ctx(),
    );
    assert.deepEqual(
      [e.message, e.step, e.permanent],
      ['mail: the server does not offer AUTH CRAM-MD5 (it offers PLAIN)', 'auth', true],
    );
  });

  test('secrets are removed: password, its base64, the PLAIN token', () => {
    const token = Buffer.from('\0alice\0pa55-word').toString('base64');
    const e = toSmtpSendError(
      {
        code: 'EAUTH',
        command: 'AUTH PLAIN',
        response: `535 bad token ${token} for pa55-word (${Buffer.from('pa55-word').toString('base64')})`,
        responseCode: 535,
      },
      ctx(),
    );
    assert.ok(!e.message.includes('pa55-word'));
    assert.ok(!e.message.includes(token));
    assert.equal(e.message, 'mail: 535 bad token [secret] for [secret] ([secret])');
    assert.equal(scrubSecrets('nothing here', []), 'nothing here');
  });

  test('an SmtpSendError passes through unchanged', () => {
    const original = new SmtpSendError('no SMTP server configured (in email.smtp)', 'config', true);
    assert.equal(toSmtpSendError(original, ctx()), original);
  });
});

describe('throttling replies', () => {
  const table: [number | undefined, string, boolean][] = [
    // Amazon SES
    [454, '454 Throttling failure: Maximum sending rate exceeded.', true],
    [454, '454 Throttling failure: Daily message quota exceeded.', true],
    // Microsoft 365
    [451, '451 4.7.500 Access denied, please try again later', true],
    [421, '421 4.7.500 Server busy. Please try again later from [203.0.113.7]. (S77714)', true],
    [432, '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded', true],
    [421, '421 4.3.2 Service not available, closing transmission channel', true],
    // Gmail
    [421, '421 4.7.0 Try again later, closing connection.', true],
    [421, '421-4.7.28 Our system has detected an unusual rate of unsolicited mail', true],
    [454, '454 4.7.0 Too many login attempts, please try again later.', true],
    [454, '454 4.7.0 Throttling', true],
    [421, '421 4.7.0 rate limit exceeded', true],
    [undefined, '421 Too many concurrent SMTP connections', true],
    // not throttling: other transient replies, permanent ones, one recipient's rate
    [421, '421 4.7.0 TLS required for this domain', false],
    [421, '421 scripted temporary failure', false],
    [
      450,
      '450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages',
      false,
    ],
    [452, '452 4.5.3 Too many recipients', false],
    [451, '451 4.3.0 Temporary local problem', false],
    [554, '554 Throttling failure: Maximum sending rate exceeded.', false],
    [550, '550 5.7.0 too many messages from you', false],
    [undefined, '', false],
  ];
  for (const [code, reply, expected] of table) {
    test(`${reply || '(no reply)'} -> ${expected ? 'throttled' : 'not throttled'}`, () => {
      assert.equal(isThrottlingReply(code, reply), expected);
    });
  }
});
