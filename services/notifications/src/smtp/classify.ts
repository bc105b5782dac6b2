import { isThrottlingReply } from './errors.ts';
import type { SmtpStep } from './types.ts';

/**
 * Whose problem a failed send is, and so what the queue does about it:
 * - `address`: the recipient's mailbox or domain does not take mail, and will not for any message
 *   (final for that address: the input a suppression list needs).
 * - `message`: this message was refused (content, size, a policy about it); another message to
 *   the same address may go through.
 * - `sender`: the relay or the recipient's provider refuses *us* (credentials, TLS, relay denied,
 *   the From identity, SPF/DKIM/DMARC, our sending rate): not the recipient's fault.
 * - `transient`: a temporary failure with no one to blame yet (4xx, a dropped connection).
 */
export type ReplyScope = 'address' | 'message' | 'sender' | 'transient';

export interface ReplyInput {
  /** The basic reply code (RFC 5321 §4.2), when the server replied. */
  code?: number | undefined;
  /** The reply, one line, e.g. `550 5.1.1 <a@b.example>: Recipient address rejected: User unknown`. */
  reply?: string | undefined;
  /** The step of the conversation that failed (the mailer's `SmtpSendError.step`). */
  step?: SmtpStep | undefined;
  /**
   * The mailer's own rules refused, with no reply from any server (a permanent `SmtpSendError`
   * without a code): a destination the destination rule forbids, a mechanism the server does not
   * offer, credentials toward a host without TLS. The config cannot send.
   */
  refusedByMailer?: boolean | undefined;
}

export interface ReplyClass {
  scope: ReplyScope;
  /** Sending this same message again later may succeed (a 4xx, a connection failure, or a pause). */
  retry: boolean;
  /**
   * The relay refuses this sender as configured (authentication, TLS, relay denied, the From
   * identity, or the config cannot send at all): every email would fail the same way, so the
   * queue pauses instead of spending deliveries (delivery/circuit-breaker.ts).
   */
  pause: boolean;
  /** The provider limits this sender's rate: every send slows down (delivery/send-rate.ts). */
  throttle: boolean;
  /** No reply at all, or the server would not take a session: it is down or unreachable. */
  unreachable: boolean;
  code?: number;
  /** The RFC 3463 enhanced status code, e.g. `5.1.1`, when the reply carried one. */
  enhanced?: string;
  /** In words, for logs and the delivery log. */
  why: string;
}

const result = (
  scope: ReplyScope,
  why: string,
  o: Partial<Pick<ReplyClass, 'retry' | 'pause' | 'throttle' | 'unreachable'>> & {
    code?: number | undefined;
    enhanced?: string | undefined;
  } = {},
): ReplyClass => ({
  scope,
  retry: o.retry ?? false,
  pause: o.pause ?? false,
  throttle: o.throttle ?? false,
  unreachable: o.unreachable ?? false,
  ...(o.code !== undefined ? { code: o.code } : {}),
  ...(o.enhanced !== undefined ? { enhanced: o.enhanced } : {}),
  why,
});

// Replies in which the relay refuses the sender itself, whatever the code says: Amazon SES
// ("554 Message rejected: Email address is not verified", SES Developer Guide, "SMTP response
// codes"), SendGrid ("403 You are not authorized to send from that email address", "SMTP Errors and
// Troubleshooting"), Microsoft 365 (5.7.60 "Client does not have permissions to send as this
// sender", SendAsDeniedException; 5.7.57 / 5.7.139 / 5.7.3 for SMTP AUTH, Exchange Online NDR
// reference), Postfix ("Relay access denied", "Sender address rejected"), Gmail ("530-5.7.0
// Authentication Required", "Must issue a STARTTLS command first").
const senderRefused =
  /relay(ing)? (access )?(denied|not permitted|not allowed)|unable to relay|not authorized to send|not allowed to send as|send ?as ?denied|permissions to send as|email address is not verified|identities failed the check|sender address rejected|sender verify failed|authentication (is )?required|not authenticated|must (issue a )?starttls|tls required|smtp ?client ?authentication is disabled|basic authentication is disabled/i;

// SPF, DKIM, DMARC and reverse-DNS refusals (Gmail "550-5.7.26 This mail is unauthenticated",
// "5.7.25 ... PTR record", Microsoft 5.7.23 / 5.7.509): the sender's DNS, fixed by the sender.
const authenticationOfSender = new Set([
  '5.7.20',
  '5.7.21',
  '5.7.22',
  '5.7.23',
  '5.7.24',
  '5.7.25',
  '5.7.26',
  '5.7.27',
]);

// Enhanced codes about this client's credentials, whatever the step: 5.7.8 credentials invalid
// (RFC 4954 §6), Microsoft 365's 5.7.57 (client not authenticated to send, at MAIL FROM), 5.7.139
// (SMTP AUTH disabled or blocked) and 5.7.60 (no permission to send as this From). The other
// RFC 4954 codes (5.7.9 mechanism too weak, 5.7.11, 4.7.12) come with 534/538/454 or at the AUTH
// step; out of it some providers reuse them (Yahoo's "554 5.7.9 Message not accepted for policy
// reasons"), so they decide nothing on their own.
const credentialCodes = new Set(['7.8', '7.57', '7.139', '7.60']);

// The recipient does not exist, in the words of servers that give no (or only an X.0.0) enhanced
// code: Yahoo ("554 delivery error: dd This user doesn't have a yahoo.com account"), Exim/cPanel
// ("550 No Such User Here", "550 Unrouteable address"), qmail, older Exchange.
const addressGone =
  /user unknown|unknown user|no such (user|mailbox|recipient)|does(n't| not) (exist|have an? .{0,40}account)|mailbox (not found|unavailable|disabled|is disabled)|unknown (recipient|mailbox)|invalid recipient|recipient not found|unrouteable address|account (is )?disabled/i;

// Basic codes of authentication (RFC 4954 §6): 530 required, 534 mechanism too weak, 535
// credentials invalid, 538 encryption required; 454 is its temporary failure (throttling first).
const authReplyCodes = new Set([530, 534, 535, 538]);

/**
 * Classifies a failed send by its RFC 3463 enhanced status code (RFC 5248 registry), and by the
 * basic RFC 5321 reply code when the server gave none; the step and a few providers' wordings
 * settle what the codes leave open. Pure. Sources, by the codes they decide:
 * - RFC 3463 §3 subjects: X.1 addressing (5.1.1 bad mailbox, 5.1.2 bad domain, 5.1.3 bad syntax,
 *   5.1.6 moved, 5.1.10 null MX — address; 5.1.7/5.1.8 bad *sender* address — sender), X.2 mailbox
 *   (5.2.1 disabled — address; 5.2.2 full, 5.2.3 too long — message), X.3 mail system (5.3.4 too big
 *   — message), X.4 routing (5.4.4 unable to route, Microsoft 5.4.1 recipient rejected by
 *   directory-based edge blocking, 5.4.310 DNS domain does not exist — address; others message),
 *   X.5 protocol, X.6 content — message; X.7 security: credentials and channel — sender (pause),
 *   SPF/DKIM/DMARC (5.7.20-27) — sender (no pause: the relay took our session), 5.7.1 — sender
 *   (pause) when the words say relaying or authentication, otherwise a policy refusal of the message.
 * - RFC 5321 §4.2.2 when there is no enhanced code: 550/551/553 at RCPT — address; 552, 554 — message;
 *   4xx — transient; a 421 greeting (service not available) — unreachable.
 * - RFC 4954 §6: 530, 534, 535, 538 and a failure at the AUTH step — sender (pause).
 * - RFC 3463 §2: the class is the basic code's (a `550 4.4.7` is permanent); the enhanced code's
 *   subject and detail give the scope.
 * - Providers' documented texts (Gmail "SMTP errors and codes", Exchange Online NDR reference,
 *   Amazon SES "SMTP response codes", SendGrid, Yahoo "SMTP error codes"): see the patterns above
 *   and the table test (classify.unit.test.ts). Throttling is `isThrottlingReply` (errors.ts).
 * Failures with no reply: a TLS failure, a refused AUTH and a config error are the sender's
 * (pause); a refused or timed-out connection is unreachable (the breaker pauses when every try is).
 */
export function classifyReply(input: ReplyInput): ReplyClass {
  const text = input.reply ?? '';
  const code = input.code ?? (Number(/^\s*([2-5]\d\d)/.exec(text)?.[1]) || undefined);
  const step = input.step;
  const enhancedMatch = /(?:^|[\s-])([245])\.(\d{1,3})\.(\d{1,3})(?=$|[\s;,:.)\]])/.exec(text);
  const enhanced = enhancedMatch ? `${enhancedMatch[1]}.${enhancedMatch[2]}.${enhancedMatch[3]}` : undefined;
  const detail = enhancedMatch ? `${enhancedMatch[2]}.${enhancedMatch[3]}` : undefined;
  const subject = enhancedMatch ? Number(enhancedMatch[2]) : undefined;
  const at = { code, enhanced };

  if (code === undefined) {
    if (input.refusedByMailer)
      return result('sender', 'the mailer refuses to send with these settings', { retry: true, pause: true });
    switch (step) {
      case 'config':
        return result('sender', 'the site config cannot send', { retry: true, pause: true });
      case 'tls':
        return result('sender', 'TLS with the SMTP server failed', { retry: true, pause: true });
      case 'auth':
        return result('sender', 'the SMTP server refused or cannot take our authentication', {
          retry: true,
          pause: true,
        });
      default:
        return result('transient', 'no reply from the SMTP server (down, unreachable or dropped)', {
          retry: true,
          unreachable: true,
        });
    }
  }

  const permanent = code >= 500;
  if (!permanent && isThrottlingReply(code, text))
    return result('sender', 'the provider limits our sending rate', { retry: true, throttle: true, ...at });

  // The relay refuses this client: our credentials, channel or identity. Never the recipient's.
  if (
    authReplyCodes.has(code) ||
    step === 'auth' ||
    step === 'tls' ||
    (detail !== undefined && credentialCodes.has(detail)) ||
    detail === '1.7' ||
    detail === '1.8' ||
    senderRefused.test(text)
  ) {
    return result('sender', 'the SMTP server refuses this sender as configured', {
      retry: true,
      pause: true,
      ...at,
    });
  }
  if (step === 'connect' || step === 'ehlo') {
    // A greeting or EHLO refused for good (our host or IP is blocked) is the sender's; a 421
    // (service not available, RFC 5321 §3.8) says the server is not taking mail now.
    if (permanent)
      return result('sender', 'the SMTP server refuses sessions from this host', {
        retry: true,
        pause: true,
        ...at,
      });
    return result('transient', 'the SMTP server does not take mail now', {
      retry: true,
      unreachable: true,
      ...at,
    });
  }
  if (enhanced && authenticationOfSender.has(enhanced.replace(/^4/, '5'))) {
    return result('sender', "the recipient's provider refuses our domain's SPF/DKIM/DMARC or DNS", {
      retry: !permanent,
      ...at,
    });
  }
  if (!permanent) return result('transient', 'a temporary failure', { retry: true, ...at });

  if ((enhanced === undefined || detail === '0.0') && addressGone.test(text))
    return result('address', 'the address does not exist or cannot take mail', at);
  if (subject !== undefined) {
    if (subject === 1) return result('address', 'the address does not exist or cannot take mail', at);
    if (detail === '2.1') return result('address', 'the mailbox is disabled', at);
    if (detail === '4.4' || detail === '4.1' || detail === '4.310')
      return result('address', "the address's domain cannot be reached for mail", at);
    if (detail === '2.2') return result('message', 'the mailbox is full', at);
    if (subject === 7) return result('message', 'refused by policy (content or reputation)', at);
    return result('message', 'the message was refused', at);
  }
  if ((code === 550 || code === 551 || code === 553) && step !== 'data')
    return result('address', 'the mailbox is unavailable', at);
  return result('message', 'the message was refused', at);
}
