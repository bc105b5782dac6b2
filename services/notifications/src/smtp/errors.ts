import { SmtpSendError, type SmtpStep } from './types.ts';

export const NO_SMTP_CONFIGURED = 'no SMTP server configured (in email.smtp)';
export const NO_FROM_ADDRESS = 'no "From" email address configured (in email.address)';

/** The fields of a nodemailer error this module reads (nodemailer sets them loosely). */
export interface TransportErrorLike {
  message?: string;
  code?: string;
  originalCode?: string;
  /** The server's reply, e.g. "535 5.7.8 Authentication failed". */
  response?: string;
  responseCode?: number;
  /** What nodemailer was doing: CONN, EHLO, STARTTLS, AUTH PLAIN, MAIL FROM, RCPT TO, DATA, API. */
  command?: string;
  timeoutType?: string;
  /** Set by the mailer: the last command the client sent on the failed connection. */
  lastCommand?: string;
  /** Set by the mailer's own guards (mechanism not offered, credentials without TLS). */
  guard?: { step: SmtpStep; permanent: boolean };
}

export interface ErrorContext {
  host: string;
  port: number;
  /** The mailer demanded TLS before AUTH (credentials toward a non-loopback host). */
  credentialsNeedTls: boolean;
  timeouts: { connectionMs: number; greetingMs: number; socketMs: number };
  /** Strings that must never appear in the message: the password, base64 forms of credentials. */
  secrets: string[];
}

// Node's TLS verification failures, which reach nodemailer as socket errors on port 465.
const tlsCodes =
  /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_(GET|VERIFY)_|HOSTNAME_MISMATCH)/;

/** Which step of the conversation failed. */
export function stepOf(err: TransportErrorLike): SmtpStep {
  if (err.guard) return err.guard.step;
  if (err.code === 'ETLS' || err.command === 'STARTTLS') return 'tls';
  if (tlsCodes.test(err.originalCode ?? '') || tlsCodes.test(err.code ?? '')) return 'tls';
  const command = (err.command ?? '').toUpperCase();
  const byCommand = stepOfCommand(command);
  if (byCommand) return byCommand;
  if (err.code === 'EAUTH') return 'auth';
  // a timeout or a dropped connection: the step is whatever the client was waiting on
  return stepOfCommand((err.lastCommand ?? '').toUpperCase()) ?? 'connect';
}

function stepOfCommand(command: string): SmtpStep | undefined {
  const verb = command.split(' ')[0] ?? '';
  switch (verb) {
    case 'EHLO':
    case 'HELO':
    case 'LHLO':
      return 'ehlo';
    case 'STARTTLS':
      return 'tls';
    case 'AUTH':
      return 'auth';
    case 'MAIL':
    case 'RCPT':
    case 'RSET':
      return 'envelope';
    case 'DATA':
      return 'data';
    default:
      return undefined;
  }
}

/** Removes every secret from a text, longest first so a secret inside another is not left half-masked. */
export function scrubSecrets(text: string, secrets: string[]): string {
  let out = text;
  for (const s of [...new Set(secrets)].filter((x) => x.length >= 3).sort((a, b) => b.length - a.length)) {
    out = out.split(s).join('[secret]');
  }
  return out;
}

/** The strings a message about these credentials must not contain. */
export function credentialSecrets(username: string | undefined, password: string | undefined): string[] {
  if (!password) return [];
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const user = username ?? '';
  return [
    password,
    b64(password),
    b64(`\0${user}\0${password}`),
    b64(`${user}\0${user}\0${password}`),
    encodeURIComponent(password),
  ];
}

function oneLine(s: string): string {
  return s
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ');
}

/**
 * A peer whose first bytes are not an SMTP greeting (an SSH or Redis banner, anything but a
 * `220`, or a 4xx/5xx reply with which an SMTP server may refuse the session). Its bytes are never
 * repeated: `/test-email` would otherwise read out whatever service listens on a host and port.
 */
function notSmtp(err: TransportErrorLike): boolean {
  if (err.command !== 'CONN' || err.response === undefined) return false;
  if (err.code === 'EPROTOCOL') return !/^[45]\d\d([ -]|$)/.test(err.response);
  return !/^[2-5]\d\d([ -]|$)/.test(err.response);
}

/** What the server or the connection said, without nodemailer's own framing. */
function whatWasSaid(err: TransportErrorLike, step: SmtpStep, ctx: ErrorContext): string {
  const where = `${ctx.host}:${ctx.port}`;
  if (err.guard) return err.message ?? 'refused';
  if (step === 'tls' && ctx.credentialsNeedTls && err.command === 'STARTTLS') {
    const said = err.response ? oneLine(err.response) : (err.message ?? 'STARTTLS failed');
    return `refusing to send credentials in clear text to ${ctx.host}: the server did not start TLS (${said})`;
  }
  if (notSmtp(err)) return `the server at ${where} did not answer as an SMTP server`;
  if (err.response) return oneLine(err.response);
  if (err.code === 'ETIMEDOUT') {
    switch (err.timeoutType) {
      case 'CONNECT_TIMEOUT':
        return `connection to ${where} timed out after ${ctx.timeouts.connectionMs} ms`;
      case 'GREETING_TIMEOUT':
        return `no greeting from ${where} within ${ctx.timeouts.greetingMs} ms`;
      default:
        return `no reply from ${where} within ${ctx.timeouts.socketMs} ms${err.lastCommand ? ` (after ${err.lastCommand.split(' ')[0]})` : ''}`;
    }
  }
  const message = err.message ?? 'unknown error';
  if (/^Reached maximum number of retries after connection was closed/.test(message)) {
    return `connection to ${where} closed by the server while sending`;
  }
  if (step === 'tls') return `TLS failed: ${message.replace(/^Error initiating TLS - /, '')}`;
  return oneLine(message);
}

/**
 * A transport error as the product reports it: `mail: <what was said>`, the step, whether a retry
 * can help (no for 5xx replies and the mailer's own config guards; yes for 4xx, timeouts and
 * connection failures), the reply code, and never a secret.
 */
export function toSmtpSendError(raw: unknown, ctx: ErrorContext): SmtpSendError {
  if (raw instanceof SmtpSendError) return raw;
  const err: TransportErrorLike =
    typeof raw === 'object' && raw !== null ? (raw as TransportErrorLike) : { message: String(raw) };
  const step = stepOf(err);
  const responseCode =
    !notSmtp(err) && typeof err.responseCode === 'number' && err.responseCode >= 200 && err.responseCode < 600
      ? err.responseCode
      : undefined;
  const permanent = err.guard ? err.guard.permanent : responseCode !== undefined && responseCode >= 500;
  const message = scrubSecrets(`mail: ${whatWasSaid(err, step, ctx)}`, ctx.secrets);
  const smtpResponse =
    err.response && !notSmtp(err) ? scrubSecrets(oneLine(err.response), ctx.secrets) : undefined;
  return new SmtpSendError(message, step, permanent, responseCode, smtpResponse);
}

/** A config problem found before any connection: permanent, message as the product words it. */
export function configError(message: string): SmtpSendError {
  return new SmtpSendError(message, 'config', true);
}

/**
 * Whether a reply says the provider is limiting how fast this sender may send. The worker then
 * slows down instead of spending the delivery's attempts. Only transient (4xx) replies count:
 * - Amazon SES (Developer Guide, "SMTP response codes"): `454 Throttling failure: Maximum sending
 *   rate exceeded.` and `454 Throttling failure: Daily message quota exceeded.`
 * - Microsoft 365 / Exchange Online (NDR reference for 4.7.500-699 and for 4.3.2; SMTP AUTH
 *   submission limits): `451 4.7.500 Access denied, please try again later`, `421 4.7.500 Server
 *   busy`, `432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded`.
 * - Gmail (Google Workspace Admin Help, "SMTP errors and codes"): `421 4.7.0 Try again later,
 *   closing connection`, `421 4.7.28 ... unusual rate of unsolicited mail`, `454 4.7.0 Too many
 *   login attempts, please try again later`.
 * `454 4.7.0` counts on its own; `421 4.7.0` only with words about rate, since Gmail also uses it
 * for policy refusals (TLS, IPv6 rules) that waiting does not cure. Gmail's `450 4.2.1` (one
 * recipient receiving too fast) is left to that delivery's own retry: slowing every send would
 * not help it.
 */
export function isThrottlingReply(responseCode: number | undefined, reply: string | undefined): boolean {
  const text = reply ?? '';
  const code = responseCode ?? Number(/^(\d{3})/.exec(text)?.[1]);
  if (!(code >= 400 && code < 500)) return false;
  const enhanced = /(?:^|\s|-)(4\.\d{1,3}\.\d{1,3})\b/.exec(text)?.[1];
  if (enhanced === '4.2.1' || /too many recipients/i.test(text)) return false;
  if (/throttl|rate limit|sending rate|maximum .*rate|message quota|unusual rate/i.test(text)) return true;
  if (code === 454 && enhanced === '4.7.0') return true;
  if (code === 421 && enhanced === '4.7.0') return /rate|too many|try again later/i.test(text);
  if (enhanced === '4.3.2' || enhanced === '4.7.28') return true;
  const ms = /^4\.7\.(\d+)$/.exec(enhanced ?? '');
  if (ms && Number(ms[1]) >= 500 && Number(ms[1]) <= 699) return true;
  return /too many (messages|connections|concurrent|sessions)|thread limit/i.test(text);
}
