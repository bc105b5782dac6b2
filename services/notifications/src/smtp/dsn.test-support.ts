/**
 * Delivery status notifications (RFC 3464) as real MTAs write them, for the parser's unit test and
 * the bounce tests. Each takes the returned message's Message-ID and recipient so a test can
 * bounce a delivery it really sent; the rest is copied from the RFC's appendix and from bounces
 * Postfix, Exchange Online, Amazon SES and Gmail send (hosts, ids and dates changed). Lines end in
 * CRLF, as on the wire.
 */
export interface DsnFixtureInput {
  /** The Message-ID of the returned message, angle brackets included. */
  messageId: string;
  /** The address the returned message was sent to. */
  recipient: string;
  /** Our delivery id, as the X-Sitemail-Delivery header and, when asked, the ENVID carry it. */
  deliveryId?: string;
}

const crlf = (s: string) => s.replace(/\r?\n/g, '\r\n');

/** The headers of an email of ours as a relay returns them. */
const returnedHeaders = (i: DsnFixtureInput) => `Return-Path: <bounces@sitemail.example>
Received: from sitemail.example (sitemail.example [198.51.100.7])
	by mail.example.net (Postfix) with ESMTPS id 3F1C6C0ABC
	for <${i.recipient}>; Tue,  1 Dec 2026 10:00:04 +0000 (UTC)
From: Sitemail <noreply@sitemail.example>
To: ${i.recipient}
Subject: A new API key was created
Message-ID: ${i.messageId}
Auto-Submitted: auto-generated
${i.deliveryId ? `X-Sitemail-Delivery: ${i.deliveryId}\n` : ''}Date: Tue, 01 Dec 2026 10:00:03 +0000
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="--_NmP-a1b2c3d4e5f6-Part_1"
`;

/** The returned message in full (RET=FULL). */
const returnedMessage = (i: DsnFixtureInput) => `${returnedHeaders(i)}
----_NmP-a1b2c3d4e5f6-Part_1
Content-Type: text/plain; charset=utf-8

A new API key "ci" was created for your account.
----_NmP-a1b2c3d4e5f6-Part_1--
`;

/** RFC 3464 appendix A.1, "Simple DSN": a 4xx the MTA gave up on after 5 days. */
export const rfc3464SimpleDsn = (i: DsnFixtureInput) =>
  crlf(`Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Message-Id: <199407072116.RAA14128@CS.UTK.EDU>
Subject: Returned mail: Cannot send message for 5 days
To: <bounces@sitemail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="RAA14128.773615765/CS.UTK.EDU"

--RAA14128.773615765/CS.UTK.EDU

The original message was received at Sat, 2 Jul 1994 17:10:28 -0400
from root@localhost

    ----- The following addresses had delivery problems -----
<${i.recipient}>  (unrecoverable error)

    ----- Transcript of session follows -----
<${i.recipient}>... Deferred: Connection timed out
    with larry.slip.umd.edu.
Message could not be delivered for 5 days
Message will be deleted from queue

--RAA14128.773615765/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;${i.recipient}
Final-Recipient: rfc822;${i.recipient}
Action: failed
Status: 4.0.0
Diagnostic-Code: smtp; 426 connection timed out
Last-Attempt-Date: Thu, 7 Jul 1994 17:15:49 -0400

--RAA14128.773615765/CS.UTK.EDU
content-type: message/rfc822

${returnedMessage(i)}
--RAA14128.773615765/CS.UTK.EDU--
`);

/**
 * RFC 3464 appendix A.2, "Multi-Recipient DSN": one failed (a comment after the status), one
 * delayed, one failed with "user unknown" behind a 5.0.0. The returned message is `i`'s.
 */
export const rfc3464MultiRecipientDsn = (i: DsnFixtureInput) =>
  crlf(`Date: Fri, 8 Jul 1994 09:21:47 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@CS.UTK.EDU>
Subject: Returned mail: User unknown
To: <bounces@sitemail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
    boundary="JAA13167.773673707/CS.UTK.EDU"

--JAA13167.773673707/CS.UTK.EDU
content-type: text/plain; charset=us-ascii

    ----- The following addresses had delivery problems -----
<arathib@vnet.IBM.COM>  (unrecoverable error)
<wsnell@sdcc13.ucsd.edu>  (unrecoverable error)

--JAA13167.773673707/CS.UTK.EDU
content-type: message/delivery-status

Reporting-MTA: dns; cs.utk.edu

Original-Recipient: rfc822;arathib@vnet.ibm.com
Final-Recipient: rfc822;arathib@vnet.ibm.com
Action: failed
Status: 5.0.0 (permanent failure)
Diagnostic-Code: smtp; 550 'arathib@vnet.IBM.COM' is not a registered gateway user
Remote-MTA: dns; vnet.ibm.com

Original-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Final-Recipient: rfc822;johnh@hpnjld.njd.hp.com
Action: delayed
Status: 4.0.0 (hpnjld.njd.jp.com: host name lookup failure)

Original-Recipient: rfc822;${i.recipient}
Final-Recipient: rfc822;${i.recipient}
Action: failed
Status: 5.0.0
Diagnostic-Code: smtp; 550 user unknown
Remote-MTA: dns; sdcc13.ucsd.edu

--JAA13167.773673707/CS.UTK.EDU
content-type: message/rfc822

${returnedMessage(i)}
--JAA13167.773673707/CS.UTK.EDU--
`);

/** RFC 3464 appendix A.4 style "Delayed DSN", headers returned only. */
export const rfc3464DelayedDsn = (i: DsnFixtureInput) =>
  crlf(`Date: Thu, 7 Jul 1994 17:16:05 -0400
From: Mail Delivery Subsystem <MAILER-DAEMON@sun2.nsfnet-relay.ac.uk>
Subject: Warning: message still undelivered after 4 hours
To: <bounces@sitemail.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=foobar

--foobar
Content-Type: text/plain

The following message has been delayed; we will keep trying.

--foobar
Content-Type: message/delivery-status

Reporting-MTA: dns; sun2.nsfnet-relay.ac.uk

Final-Recipient: rfc822;${i.recipient}
Status: 4.0.0 (unknown temporary failure)
Action: delayed

--foobar
Content-Type: text/rfc822-headers

${returnedHeaders(i)}
--foobar--
`);

/** Postfix's bounce(8) for a 550 5.1.1 at RCPT, with ENVID and the headers returned (RET=HDRS). */
export const postfixBounce = (i: DsnFixtureInput) =>
  crlf(`Return-Path: <>
Received: by mail.example.net (Postfix)
	id 5A2B7C0DEF; Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
Date: Tue,  1 Dec 2026 10:00:05 +0000 (UTC)
From: MAILER-DAEMON@mail.example.net (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: bounces@sitemail.example
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="3F1C6C0ABC.1764583205/mail.example.net"
Content-Transfer-Encoding: 8bit
Message-Id: <20261201100005.5A2B7C0DEF@mail.example.net>

This is a MIME-encapsulated message.

--3F1C6C0ABC.1764583205/mail.example.net
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mail.example.net.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

                   The mail system

<${i.recipient}>: host mx.example.org[203.0.113.5] said: 550 5.1.1
    <${i.recipient}>: Recipient address rejected: User unknown in virtual
    mailbox table (in reply to RCPT TO command)

--3F1C6C0ABC.1764583205/mail.example.net
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.net
X-Postfix-Queue-ID: 3F1C6C0ABC
X-Postfix-Sender: rfc822; bounces@sitemail.example
${i.deliveryId ? `Original-Envelope-Id: ${i.deliveryId}\n` : ''}Arrival-Date: Tue,  1 Dec 2026 10:00:04 +0000 (UTC)

Final-Recipient: rfc822; ${i.recipient}
Original-Recipient: rfc822;${i.recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <${i.recipient}>: Recipient address
    rejected: User unknown in virtual mailbox table

--3F1C6C0ABC.1764583205/mail.example.net
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

${returnedHeaders(i)}
--3F1C6C0ABC.1764583205/mail.example.net--
`);

/** Exchange Online's NDR (550 5.1.10 RecipientNotFound): the text in multipart/alternative, base64 report. */
export const exchangeOnlineNdr = (i: DsnFixtureInput) => {
  const report = `Reporting-MTA: dns;DM6PR11MB4545.namprd11.prod.outlook.com
Received-From-MTA: dns;mail.sitemail.example
Arrival-Date: Tue, 1 Dec 2026 10:00:04 +0000

Final-Recipient: rfc822;${i.recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient ${i.recipient} not found by SMTP address lookup
Remote-MTA: dns;BN8PR11MB3571.namprd11.prod.outlook.com
X-Display-Name: ${i.recipient}
`;
  const b64 = (
    Buffer.from(crlf(report))
      .toString('base64')
      .match(/.{1,76}/g) ?? []
  ).join('\n');
  return crlf(`From: Microsoft Outlook <MicrosoftExchange329e71ec88ae4615bbc36ab6ce41109e@contoso.onmicrosoft.com>
To: <bounces@sitemail.example>
Date: Tue, 1 Dec 2026 10:00:06 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a"
X-MS-Exchange-Message-Is-Ndr:
Content-Language: en-US
Message-ID: <4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a@DM6PR11MB4545.namprd11.prod.outlook.com>
In-Reply-To: ${i.messageId}
References: ${i.messageId}
Subject: Undeliverable: A new API key was created
Auto-Submitted: auto-replied
MIME-Version: 1.0

--4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="d4c5b6a4-1f2e-3d4c-5b6a-4b1c9a8e7b16"

--d4c5b6a4-1f2e-3d4c-5b6a-4b1c9a8e7b16
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to ${i.recipient} couldn't be delivered.
${i.recipient.split('@')[0]} wasn't found at ${i.recipient.split('@')[1]}.

--d4c5b6a4-1f2e-3d4c-5b6a-4b1c9a8e7b16
Content-Type: text/html; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

<html><body><p>Your message couldn't be delivered.</p></body></html>

--d4c5b6a4-1f2e-3d4c-5b6a-4b1c9a8e7b16--

--4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a
Content-Type: message/delivery-status
Content-Transfer-Encoding: base64

${b64}

--4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a
Content-Type: message/rfc822

${returnedMessage(i)}
--4b1c9a8e-7b16-4bfc-9c8a-1f2e3d4c5b6a--
`);
};

/** Amazon SES's bounce to the Return-Path (email feedback forwarding): fields in SES's order, no Remote-MTA. */
export const sesBounce = (i: DsnFixtureInput) =>
  crlf(`Return-Path: <>
From: MAILER-DAEMON@amazonses.com
To: bounces@sitemail.example
Subject: Delivery Status Notification (Failure)
Message-ID: <0100018c2a5b7f3e-6d2c1a9e-0001@email.amazonses.com>
Date: Tue, 1 Dec 2026 10:00:07 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="=_ses_1764583207_0001"
X-SES-Outgoing: 2026.12.01-54.240.8.10

--=_ses_1764583207_0001
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 7bit

An error occurred while trying to deliver the mail to the following recipients:
${i.recipient}
--=_ses_1764583207_0001
Content-Type: message/delivery-status

Reporting-MTA: dns; a8-55.smtp-out.amazonses.com

Action: failed
Final-Recipient: rfc822; ${i.recipient}
Diagnostic-Code: smtp; 550 5.1.1 user unknown
Status: 5.1.1


--=_ses_1764583207_0001
Content-Type: message/rfc822

${returnedMessage(i)}
--=_ses_1764583207_0001--
`);

/** Gmail's "Address not found" (a multi-line 550-5.1.1 folded in Diagnostic-Code, X-Original-Message-ID). */
export const gmailAddressNotFound = (i: DsnFixtureInput) =>
  crlf(`Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.com>
To: bounces@sitemail.example
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: ${i.messageId}
In-Reply-To: ${i.messageId}
X-Failed-Recipients: ${i.recipient}
Message-ID: <6760c0e3.050a0220.2d3b1c.0001.GMR@mx.google.com>
Date: Tue, 01 Dec 2026 02:00:05 -0800 (PST)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000a1b2c3"; report-type=delivery-status

--000000000000a1b2c3
Content-Type: multipart/related; boundary="000000000000d4e5f6"

--000000000000d4e5f6
Content-Type: multipart/alternative; boundary="000000000000a7b8c9"

--000000000000a7b8c9
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to ${i.recipient} because the address couldn't be found, or is unable to receive mail.

Learn more here: https://support.google.com/mail/?p=NoSuchUser

--000000000000a7b8c9
Content-Type: text/html; charset="UTF-8"

<html><body><h2>Address not found</h2></body></html>

--000000000000a7b8c9--
--000000000000d4e5f6--
--000000000000a1b2c3
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.com
Received-From-MTA: dns; noreply@sitemail.example
Arrival-Date: Tue, 01 Dec 2026 02:00:04 -0800 (PST)
X-Original-Message-ID: ${i.messageId}

Final-Recipient: rfc822; ${i.recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.com. (2607:f8b0:4864:20::1b, the server for
 the domain ${i.recipient.split('@')[1]}.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550-5.1.1 unnecessary spaces. For more information, go to
 550 5.1.1  https://support.google.com/mail/?p=NoSuchUser d1-20020a05620a - gsmtp
Last-Attempt-Date: Tue, 01 Dec 2026 02:00:05 -0800 (PST)

--000000000000a1b2c3
Content-Type: message/rfc822

${returnedMessage(i)}
--000000000000a1b2c3--
`);

/** Gmail's "Message not delivered" for a full mailbox: a 552 5.2.2 (final for this message, not the address). */
export const gmailMailboxFull = (i: DsnFixtureInput) =>
  gmailAddressNotFound(i)
    .replace('** Address not found **', '** Message not delivered **')
    .replace(
      /Diagnostic-Code: smtp; 550-5\.1\.1[\s\S]*?gsmtp/,
      "Diagnostic-Code: smtp; 552-5.2.2 The recipient's inbox is out of storage space.\r\n 552 5.2.2 Please direct the recipient to https://support.google.com/mail/?p=OverQuotaPerm - gsmtp",
    )
    .replace('Status: 5.1.1', 'Status: 5.2.2');

/** A DSN about a message of someone else's: no delivery of ours has its Message-ID. */
export const unknownMessageDsn = () =>
  postfixBounce({ messageId: '<not-ours-0001@elsewhere.example>', recipient: 'someone@example.org' });

/** Not DSNs: each should be refused naming what is wrong. */
export const notDsns = {
  plainText: crlf('Hello,\n\nthis is not a bounce.\n'),
  multipartMixed: crlf(`From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=x

--x
Content-Type: text/plain

hi
--x--
`),
  readReceipt: crlf(`From: a@example.org
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary=x

--x
Content-Type: text/plain

Your message was displayed.
--x
Content-Type: message/disposition-notification

Reporting-UA: mail.example.org; Example Mail
Final-Recipient: rfc822; a@example.org
Disposition: manual-action/MDN-sent-manually; displayed
--x--
`),
  noStatusPart: crlf(`From: MAILER-DAEMON@example.org
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=x

--x
Content-Type: text/plain

Your message could not be delivered.
--x--
`),
  noRecipients: crlf(`From: MAILER-DAEMON@example.org
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=x

--x
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org
--x--
`),
  badAction: crlf(`From: MAILER-DAEMON@example.org
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=x

--x
Content-Type: message/delivery-status

Reporting-MTA: dns; mail.example.org

Final-Recipient: rfc822; a@example.org
Action: exploded
Status: 5.1.1
--x--
`),
};
