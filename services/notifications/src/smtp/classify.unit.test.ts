import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyReply, type ReplyScope } from './classify.ts';
import type { SmtpStep } from './types.ts';

/**
 * What the queue does with each outcome: `final` (fail this delivery), `retry` (back off and try
 * again), `pause` (stop claiming: the relay refuses us), `throttle` (slow every send down).
 */
type Action = 'final' | 'retry' | 'pause' | 'throttle';

const actionOf = (c: ReturnType<typeof classifyReply>): Action =>
  c.pause ? 'pause' : c.throttle ? 'throttle' : c.retry ? 'retry' : 'final';

// [source, step, reply (as servers send it; code parsed from it), scope, action]
const replies: [string, SmtpStep, string, ReplyScope, Action][] = [
  // RFC 3463 / RFC 5321 / RFC 4954 texts
  ['RFC 3463 5.1.1', 'envelope', '550 5.1.1 Bad destination mailbox address', 'address', 'final'],
  ['RFC 3463 5.1.2', 'envelope', '550 5.1.2 Bad destination system address', 'address', 'final'],
  ['RFC 3463 5.1.3', 'envelope', '501 5.1.3 Bad destination mailbox address syntax', 'address', 'final'],
  [
    'RFC 3463 5.1.6',
    'envelope',
    '551 5.1.6 Destination mailbox has moved, No forwarding address',
    'address',
    'final',
  ],
  ['RFC 7505 5.1.10', 'envelope', '556 5.1.10 Recipient address has null MX', 'address', 'final'],
  ['RFC 3463 5.2.1', 'envelope', '550 5.2.1 Mailbox disabled, not accepting messages', 'address', 'final'],
  ['RFC 3463 5.2.2', 'data', '552 5.2.2 Mailbox full', 'message', 'final'],
  ['RFC 3463 5.3.4', 'data', '552 5.3.4 Message too big for system', 'message', 'final'],
  ['RFC 3463 5.6.0', 'data', '554 5.6.0 Other or undefined media error', 'message', 'final'],
  ['RFC 3463 4.2.2', 'envelope', '452 4.2.2 Mailbox full', 'transient', 'retry'],
  ['RFC 3463 5.1.8', 'envelope', "553 5.1.8 Bad sender's system address", 'sender', 'pause'],
  ['RFC 4954 535', 'auth', '535 5.7.8 Authentication credentials invalid', 'sender', 'pause'],
  ['RFC 4954 534', 'auth', '534 5.7.9 Authentication mechanism is too weak', 'sender', 'pause'],
  ['RFC 4954 530', 'envelope', '530 5.7.0 Authentication required', 'sender', 'pause'],
  [
    'RFC 4954 538',
    'auth',
    '538 5.7.11 Encryption required for requested authentication mechanism',
    'sender',
    'pause',
  ],
  [
    'RFC 5321 421',
    'connect',
    '421 mail.example.com Service not available, closing transmission channel',
    'transient',
    'retry',
  ],
  [
    'RFC 5321 450',
    'envelope',
    '450 Requested mail action not taken: mailbox unavailable',
    'transient',
    'retry',
  ],
  ['RFC 5321 550', 'envelope', '550 Requested action not taken: mailbox unavailable', 'address', 'final'],
  ['RFC 5321 554', 'data', '554 Transaction failed', 'message', 'final'],
  // Gmail (Google Workspace Admin Help, "SMTP errors and codes")
  [
    'Gmail 5.1.1',
    'envelope',
    "550-5.1.1 The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. - gsmtp",
    'address',
    'final',
  ],
  [
    'Gmail 5.2.1',
    'envelope',
    '550-5.2.1 The email account that you tried to reach is disabled. - gsmtp',
    'address',
    'final',
  ],
  [
    'Gmail 4.2.2',
    'envelope',
    '452-4.2.2 The email account that you tried to reach is over quota. - gsmtp',
    'transient',
    'retry',
  ],
  [
    'Gmail 4.2.1',
    'envelope',
    '450-4.2.1 The user you are trying to contact is receiving mail too quickly. - gsmtp',
    'transient',
    'retry',
  ],
  [
    'Gmail 5.3.4',
    'data',
    "552-5.3.4 Your message exceeded Google's message size limits. - gsmtp",
    'message',
    'final',
  ],
  [
    'Gmail 5.7.1 spam',
    'data',
    '550-5.7.1 Our system has detected that this message is likely unsolicited mail. - gsmtp',
    'message',
    'final',
  ],
  [
    'Gmail 5.7.26',
    'data',
    '550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users, and has been blocked. - gsmtp',
    'sender',
    'final',
  ],
  [
    'Gmail 535 BadCredentials',
    'auth',
    '535-5.7.8 Username and Password not accepted. Learn more at https://support.google.com/mail/?p=BadCredentials - gsmtp',
    'sender',
    'pause',
  ],
  ['Gmail 530 auth required', 'envelope', '530-5.7.0 Authentication Required. - gsmtp', 'sender', 'pause'],
  [
    'Gmail STARTTLS first',
    'envelope',
    '530 5.7.0 Must issue a STARTTLS command first. - gsmtp',
    'sender',
    'pause',
  ],
  [
    'Gmail 421 4.7.0 rate',
    'connect',
    '421-4.7.0 Try again later, closing connection. - gsmtp',
    'sender',
    'throttle',
  ],
  [
    'Gmail 4.7.28 unusual rate',
    'data',
    '421-4.7.28 Our system has detected an unusual rate of unsolicited mail originating from your IP address. - gsmtp',
    'sender',
    'throttle',
  ],
  [
    'Gmail 454 login attempts',
    'auth',
    '454 4.7.0 Too many login attempts, please try again later. - gsmtp',
    'sender',
    'throttle',
  ],
  // Microsoft 365 / Exchange Online (NDR reference)
  [
    'Exchange 5.1.10',
    'data',
    '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup',
    'address',
    'final',
  ],
  [
    'Exchange 5.4.1 DBEB',
    'envelope',
    '550 5.4.1 Recipient address rejected: Access denied. AS(201806281)',
    'address',
    'final',
  ],
  ['Exchange 5.4.310', 'envelope', '550 5.4.310 DNS domain does not exist', 'address', 'final'],
  [
    'Exchange 5.7.139',
    'auth',
    '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.',
    'sender',
    'pause',
  ],
  [
    'Exchange 5.7.57',
    'envelope',
    '530 5.7.57 Client not authenticated to send mail. [AM0PR01CA0001.eurprd01.prod.exchangelabs.com]',
    'sender',
    'pause',
  ],
  [
    'Exchange 5.7.60',
    'envelope',
    '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
    'sender',
    'pause',
  ],
  ['Exchange unable to relay', 'envelope', '550 5.7.1 Unable to relay', 'sender', 'pause'],
  [
    'Exchange 4.7.500 throttled',
    'envelope',
    '451 4.7.500 Access denied, please try again later',
    'sender',
    'throttle',
  ],
  ['Exchange QUEUE.Expired', 'data', '550 4.4.7 QUEUE.Expired; message expired', 'message', 'final'],
  // Amazon SES (Developer Guide, "SMTP response codes returned by Amazon SES")
  [
    'SES unverified identity',
    'data',
    '554 Message rejected: Email address is not verified. The following identities failed the check in region US-WEST-2: webmaster@localhost',
    'sender',
    'pause',
  ],
  ['SES credentials', 'auth', '535 Authentication Credentials Invalid', 'sender', 'pause'],
  ['SES rate', 'data', '454 Throttling failure: Maximum sending rate exceeded.', 'sender', 'throttle'],
  ['SES temporary', 'data', '451 Temporary service failure', 'transient', 'retry'],
  // Yahoo (Sender Hub, "SMTP error codes") and others
  [
    'Yahoo no account',
    'envelope',
    "554 delivery error: dd This user doesn't have a yahoo.com account (someone@yahoo.com) [0] - mta1003.mail.ne1.yahoo.com",
    'address',
    'final',
  ],
  ['Yahoo policy 5.7.9', 'data', '554 5.7.9 Message not accepted for policy reasons.', 'message', 'final'],
  [
    'Yahoo TSS04',
    'envelope',
    '421 4.7.0 [TSS04] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints',
    'transient',
    'retry',
  ],
  ['Postfix relay denied', 'envelope', '554 5.7.1 <x@example.net>: Relay access denied', 'sender', 'pause'],
  [
    'Postfix user unknown',
    'envelope',
    '550 5.1.1 <x@example.org>: Recipient address rejected: User unknown in virtual mailbox table',
    'address',
    'final',
  ],
  [
    'Postfix greylisting',
    'envelope',
    '450 4.2.0 <x@example.org>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/',
    'transient',
    'retry',
  ],
  ['cPanel no such user', 'envelope', '550 No Such User Here', 'address', 'final'],
  [
    'SendGrid sender identity',
    'envelope',
    '403 You are not authorized to send from that email address',
    'sender',
    'pause',
  ],
  [
    'Spamhaus at greeting',
    'connect',
    '554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org',
    'sender',
    'pause',
  ],
];

describe('classifyReply (RFC 3463 enhanced codes, RFC 5321 basic codes, providers’ texts)', () => {
  it(`classifies ${replies.length} real replies`, () => {
    assert.ok(replies.length >= 30);
    const wrong: string[] = [];
    for (const [source, step, reply, scope, action] of replies) {
      const c = classifyReply({ reply, step });
      const got = `${c.scope}/${actionOf(c)}`;
      if (got !== `${scope}/${action}`)
        wrong.push(`${source}: expected ${scope}/${action}, got ${got} (${c.why})`);
    }
    assert.deepEqual(wrong, []);
  });

  it('reads the enhanced code and the basic code, and takes permanence from the basic one', () => {
    const c = classifyReply({ reply: '550 4.4.7 QUEUE.Expired; message expired', step: 'data' });
    assert.equal(c.code, 550);
    assert.equal(c.enhanced, '4.4.7');
    assert.equal(c.retry, false);
    assert.equal(classifyReply({ code: 550, reply: 'mailbox unavailable', step: 'envelope' }).code, 550);
  });

  it('classifies failures without a reply by their step', () => {
    const cases: [SmtpStep, ReplyScope, Action, boolean][] = [
      ['connect', 'transient', 'retry', true],
      ['data', 'transient', 'retry', true],
      ['tls', 'sender', 'pause', false],
      ['auth', 'sender', 'pause', false],
      ['config', 'sender', 'pause', false],
    ];
    for (const [step, scope, action, unreachable] of cases) {
      const c = classifyReply({ step });
      assert.deepEqual([c.scope, actionOf(c), c.unreachable], [scope, action, unreachable], step);
    }
  });

  it("pauses when the mailer's own rules refuse the settings (no server was asked)", () => {
    const c = classifyReply({ step: 'connect', refusedByMailer: true });
    assert.deepEqual([c.scope, actionOf(c), c.unreachable], ['sender', 'pause', false]);
  });

  it('never pauses on a mailbox problem, and never finalises a sender problem', () => {
    for (const [, step, reply, scope] of replies) {
      const c = classifyReply({ reply, step });
      if (scope === 'address') assert.equal(c.pause, false, reply);
      if (c.pause) assert.equal(c.retry, true, reply);
    }
  });
});
