import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  exchangeOnlineNdr,
  gmailAddressNotFound,
  gmailMailboxFull,
  notDsns,
  postfixBounce,
  rfc3464DelayedDsn,
  rfc3464MultiRecipientDsn,
  rfc3464SimpleDsn,
  sesBounce,
} from './dsn.test-support.ts';
import { classifyDsnRecipient, type DeliveryStatusNotification, dsnReply, parseDsn } from './dsn.ts';

const ours = {
  messageId: '<3f0c0b6e-1111-4222-8333-444455556666@sitemail.example>',
  recipient: 'Nobody@Example.org',
  deliveryId: '3f0c0b6e-1111-4222-8333-444455556666',
};

async function parsed(raw: string): Promise<DeliveryStatusNotification> {
  const r = await parseDsn(raw);
  if (!r.ok) assert.fail(`not parsed: ${r.error}`);
  return r.dsn;
}

describe('parseDsn (RFC 3464 through mailparser)', () => {
  // name, fixture, expected per-recipient [action, status, scope of a failed one], reporting MTA
  const cases = [
    [
      'RFC 3464 A.1 simple (4xx given up)',
      rfc3464SimpleDsn,
      [['failed', '4.0.0', 'transient']],
      'cs.utk.edu',
    ],
    [
      'RFC 3464 A.2 multi-recipient',
      rfc3464MultiRecipientDsn,
      [
        ['failed', '5.0.0', 'message'],
        ['delayed', '4.0.0', 'transient'],
        ['failed', '5.0.0', 'address'],
      ],
      'cs.utk.edu',
    ],
    [
      'RFC 3464 A.4 delayed',
      rfc3464DelayedDsn,
      [['delayed', '4.0.0', 'transient']],
      'sun2.nsfnet-relay.ac.uk',
    ],
    [
      'Postfix bounce(8), 550 5.1.1 at RCPT',
      postfixBounce,
      [['failed', '5.1.1', 'address']],
      'mail.example.net',
    ],
    [
      'Exchange Online NDR 5.1.10 (base64 report)',
      exchangeOnlineNdr,
      [['failed', '5.1.10', 'address']],
      'DM6PR11MB4545.namprd11.prod.outlook.com',
    ],
    ['Amazon SES bounce', sesBounce, [['failed', '5.1.1', 'address']], 'a8-55.smtp-out.amazonses.com'],
    ['Gmail address not found', gmailAddressNotFound, [['failed', '5.1.1', 'address']], 'googlemail.com'],
    ['Gmail mailbox full', gmailMailboxFull, [['failed', '5.2.2', 'message']], 'googlemail.com'],
  ] as const;

  for (const [name, fixture, expected, reportingMta] of cases) {
    test(name, async () => {
      const dsn = await parsed(fixture(ours));
      assert.equal(dsn.originalMessageId, ours.messageId);
      assert.equal(dsn.reportingMta, reportingMta);
      assert.deepEqual(
        dsn.recipients.map((r) => [r.action, r.status, classifyDsnRecipient(r).scope]),
        expected.map((e) => [...e]),
      );
      const last = dsn.recipients.at(-1)!;
      assert.equal(last.finalRecipient.toLowerCase(), ours.recipient.toLowerCase());
    });
  }

  test('the returned headers name the delivery; Postfix carries the ENVID', async () => {
    const postfix = await parsed(postfixBounce(ours));
    assert.equal(postfix.originalEnvelopeId, ours.deliveryId);
    assert.equal(postfix.originalDeliveryHeader, ours.deliveryId);
    assert.equal(postfix.arrivalDate, 'Tue,  1 Dec 2026 10:00:04 +0000 (UTC)');
    const r = postfix.recipients[0]!;
    assert.equal(r.remoteMta, 'mx.example.org');
    assert.equal(r.originalRecipient, ours.recipient);
    // Folded over two lines in the report: one line here.
    assert.equal(
      r.diagnosticCode,
      `smtp; 550 5.1.1 <${ours.recipient}>: Recipient address rejected: User unknown in virtual mailbox table`,
    );
    const withoutId = await parsed(postfixBounce({ messageId: ours.messageId, recipient: ours.recipient }));
    assert.equal(withoutId.originalEnvelopeId, undefined);
    assert.equal(withoutId.originalDeliveryHeader, undefined);
  });

  test('Gmail: the multi-line reply is one diagnostic; the folded Remote-MTA is unfolded', async () => {
    const r = (await parsed(gmailAddressNotFound(ours))).recipients[0]!;
    assert.match(r.diagnosticCode!, /^smtp; 550-5\.1\.1 The email account .* 550 5\.1\.1 {2}https:/);
    assert.match(r.remoteMta!, /^gmail-smtp-in\.l\.google\.com\. \(2607:.* the domain example\.org\.\)$/i);
    assert.equal(r.lastAttemptDate, 'Tue, 01 Dec 2026 02:00:05 -0800 (PST)');
  });

  test('without returned headers the Message-ID comes from the report (X-Original-Message-ID, In-Reply-To)', async () => {
    const strip = (raw: string) =>
      raw.replace(/Content-Type: message\/rfc822[\s\S]*?(?=\r\n--[^\r\n]*--\r\n$)/, '');
    const gmail = await parsed(strip(gmailAddressNotFound(ours)));
    assert.equal(gmail.originalMessageId, ours.messageId);
    const exchange = await parsed(strip(exchangeOnlineNdr(ours)));
    assert.equal(exchange.originalMessageId, ours.messageId);
    assert.equal(exchange.originalDeliveryHeader, undefined);
  });

  test('a header-only Status comment and a missing Status still parse', async () => {
    const dsn = await parsed(rfc3464MultiRecipientDsn(ours));
    assert.equal(dsn.recipients[0]!.status, '5.0.0');
    const noStatus = rfc3464SimpleDsn(ours).replace('Status: 4.0.0\r\n', '');
    const r = (await parsed(noStatus)).recipients[0]!;
    assert.equal(r.status, undefined);
    assert.equal(dsnReply(r), '426 connection timed out');
  });

  for (const [name, raw, field, message] of [
    ['plain text', notDsns.plainText, 'Content-Type', /Content-Type is missing, not multipart\/report/],
    ['multipart/mixed', notDsns.multipartMixed, 'Content-Type', /multipart\/mixed, not multipart\/report/],
    ['a read receipt (MDN)', notDsns.readReceipt, 'report-type', /report-type=disposition-notification/],
    [
      'no delivery-status part',
      notDsns.noStatusPart,
      'message/delivery-status',
      /no message\/delivery-status/,
    ],
    ['no recipients', notDsns.noRecipients, 'Final-Recipient', /no per-recipient fields/],
    ['an action RFC 3464 lacks', notDsns.badAction, 'Action', /Action "exploded", not one of failed/],
    ['empty', '', 'Content-Type', /Content-Type is missing/],
    [
      'binary noise',
      Buffer.from([0, 255, 13, 10, 13, 10, 1, 2, 3]).toString('latin1'),
      'Content-Type',
      /missing/,
    ],
  ] as const) {
    test(`refused, naming what is wrong: ${name}`, async () => {
      const r = await parseDsn(raw);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.field, field);
      assert.match(r.error, message);
    });
  }

  test('a recipient without Final-Recipient or Action is refused', async () => {
    const noFinal = await parseDsn(postfixBounce(ours).replace(/Final-Recipient:[^\r]*\r\n/, ''));
    assert.deepEqual(noFinal.ok ? undefined : [noFinal.field, noFinal.error], [
      'Final-Recipient',
      'recipient 1 of the report has no Final-Recipient',
    ]);
    const noAction = await parseDsn(sesBounce(ours).replace('Action: failed\r\n', ''));
    assert.equal(noAction.ok ? undefined : noAction.field, 'Action');
  });

  test('control characters (a NUL Postgres text cannot hold) are removed from every value', async () => {
    const raw = postfixBounce(ours)
      .replace('Reporting-MTA: dns; mail.example.net', 'Reporting-MTA: dns; mail.\u0000example.net')
      .replace(
        `Final-Recipient: rfc822; ${ours.recipient}`,
        `Final-Recipient: rfc822; \u0001${ours.recipient}\u0000`,
      );
    const dsn = await parsed(raw);
    assert.equal(dsn.reportingMta, 'mail.example.net');
    assert.equal(dsn.recipients[0]!.finalRecipient, ours.recipient);
  });

  test('more recipients than the bound are refused', async () => {
    const block = 'Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n';
    const raw = sesBounce(ours).replace(
      'Action: failed\r\nFinal-Recipient',
      `${block.repeat(100)}Action: failed\r\nFinal-Recipient`,
    );
    const r = await parseDsn(raw);
    assert.equal(r.ok ? undefined : r.error, 'the report names more than 100 recipients');
  });
});

describe('dsnReply / classifyDsnRecipient', () => {
  const report = (status: string | undefined, diagnosticCode?: string) => ({
    finalRecipient: 'a@example.org',
    action: 'failed' as const,
    ...(status ? { status } : {}),
    ...(diagnosticCode ? { diagnosticCode } : {}),
  });
  for (const [status, diagnostic, reply, scope] of [
    ['5.1.1', undefined, '550 5.1.1', 'address'],
    [
      '5.1.1',
      'smtp; 550 5.1.1 <a@example.org>: User unknown',
      '550 5.1.1 <a@example.org>: User unknown',
      'address',
    ],
    ['5.0.0', 'smtp; 550 5.1.1 User unknown', '550 5.1.1 User unknown', 'address'],
    ['5.0.0', 'smtp; 550 user unknown', '550 5.0.0 user unknown', 'address'],
    ['5.2.2', 'smtp; 552 5.2.2 Mailbox full', '552 5.2.2 Mailbox full', 'message'],
    [
      '5.7.26',
      'smtp; 550 5.7.26 This mail is unauthenticated',
      '550 5.7.26 This mail is unauthenticated',
      'sender',
    ],
    ['5.4.4', undefined, '550 5.4.4', 'address'],
    ['4.4.7', 'smtp; 421 4.4.7 Message expired', '421 4.4.7 Message expired', 'transient'],
    [undefined, 'smtp; 550 5.1.1 no such user', '550 5.1.1 no such user', 'address'],
    ['5.1.1', 'x-unix; unknown user', '550 5.1.1 unknown user', 'address'],
  ] as const) {
    test(`${status ?? '(none)'} / ${diagnostic ?? '(none)'} → ${scope}`, () => {
      const r = report(status, diagnostic);
      const c = classifyDsnRecipient(r);
      assert.equal(c.reply, reply);
      assert.equal(c.scope, scope);
    });
  }
});
