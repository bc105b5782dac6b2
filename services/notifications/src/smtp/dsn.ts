import { type ParsedMail, simpleParser } from 'mailparser';
import { classifyReply, type ReplyClass } from './classify.ts';

/**
 * Delivery status notifications (RFC 3464): the bounce a relay sends after it accepted an email
 * (SES, Gmail's relay, Exchange Online and Postfix all accept at SMTP time and bounce later). The
 * MIME structure is mailparser's (the `multipart/report` with its `message/delivery-status` part
 * and the returned `message/rfc822` or `text/rfc822-headers` part, kept as attachments); the
 * delivery-status fields are RFC 3464 §2's own header-like grammar, read here.
 */

/** RFC 3464 §2.3.3. */
export const dsnActions = ['failed', 'delayed', 'delivered', 'relayed', 'expanded'] as const;
export type DsnAction = (typeof dsnActions)[number];

/** One per-recipient block of the report. */
export interface DsnRecipientReport {
  /** The address (type `rfc822`), else the field as written (`mailbus; SYS2.VMK`). */
  finalRecipient: string;
  originalRecipient?: string;
  action: DsnAction;
  /** The RFC 3463 status `x.y.z`, when the report carried a well-formed one. */
  status?: string;
  /** The Diagnostic-Code, type included (`smtp; 550 5.1.1 …`), on one line. */
  diagnosticCode?: string;
  remoteMta?: string;
  lastAttemptDate?: string;
  willRetryUntil?: string;
}

export interface DeliveryStatusNotification {
  reportingMta?: string;
  /** The ENVID the original message was sent with (we send the delivery id). */
  originalEnvelopeId?: string;
  arrivalDate?: string;
  /** The Message-ID of the returned message (its headers), else of the report's own reference to it. */
  originalMessageId?: string;
  /** The returned message's X-Sitemail-Delivery header: the delivery id, when it is ours. */
  originalDeliveryHeader?: string;
  recipients: DsnRecipientReport[];
}

export type DsnParseResult =
  | { ok: true; dsn: DeliveryStatusNotification }
  | { ok: false; error: string; field: string };

/** Bounds on a report: a DSN names a handful of recipients; a longer one is not a real bounce. */
export const MAX_DSN_RECIPIENTS = 100;
const MAX_FIELD = 1000;

const STATUS = /^([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/;

const DELIVERY_STATUS_TYPES = new Set(['message/delivery-status', 'message/global-delivery-status']);
const RETURNED_TYPES = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/global',
  'message/global-headers',
]);

const fail = (error: string, field: string): DsnParseResult => ({ ok: false, error, field });

/**
 * Parses a raw DSN. Never throws: anything that is not a delivery status report (another MIME
 * message, a read receipt, a report without recipients or with an action RFC 3464 does not
 * define) is `{ ok: false, error }` naming what is wrong.
 */
export async function parseDsn(raw: Buffer | string): Promise<DsnParseResult> {
  let mail: ParsedMail;
  try {
    mail = await simpleParser(typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw, {
      // The report and the returned message as parts of their own, not folded into the text.
      keepDeliveryStatus: true,
      ignoreEmbedded: true,
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      checksumAlgo: false,
      maxChildNodes: 50,
    });
  } catch (err) {
    return fail(`the body is not a MIME message (${(err as Error).message})`, 'body');
  }
  const contentType = mail.headers.get('content-type') as
    | { value?: string; params?: Record<string, string> }
    | undefined;
  const type = contentType?.value?.toLowerCase();
  if (type !== 'multipart/report') {
    return fail(
      `not a delivery status notification: its Content-Type is ${type ?? 'missing'}, not multipart/report (RFC 3464)`,
      'Content-Type',
    );
  }
  const reportType = contentType?.params?.['report-type']?.toLowerCase();
  if (reportType !== 'delivery-status' && reportType !== 'global-delivery-status') {
    return fail(
      `not a delivery status notification: multipart/report with report-type=${reportType ?? '(none)'}, not delivery-status`,
      'report-type',
    );
  }
  const statusPart = mail.attachments.find((a) => DELIVERY_STATUS_TYPES.has(a.contentType.toLowerCase()));
  if (!statusPart) return fail('the report has no message/delivery-status part', 'message/delivery-status');

  const groups = fieldGroups(statusPart.content.toString('utf8'));
  const perMessage = groups[0] ?? new Map<string, string>();
  if (groups.length < 2) {
    return fail('the message/delivery-status part has no per-recipient fields', 'Final-Recipient');
  }
  if (groups.length - 1 > MAX_DSN_RECIPIENTS) {
    return fail(`the report names more than ${MAX_DSN_RECIPIENTS} recipients`, 'Final-Recipient');
  }
  const recipients: DsnRecipientReport[] = [];
  for (const [n, g] of groups.slice(1).entries()) {
    const at = `recipient ${n + 1}`;
    const finalRecipient = g.get('final-recipient');
    if (!finalRecipient) return fail(`${at} of the report has no Final-Recipient`, 'Final-Recipient');
    const action = g
      .get('action')
      ?.toLowerCase()
      .replace(/\s*\(.*$/, '');
    if (!action) return fail(`${at} of the report has no Action`, 'Action');
    if (!(dsnActions as readonly string[]).includes(action)) {
      return fail(
        `${at} of the report has Action "${bounded(action, 40)}", not one of ${dsnActions.join(', ')}`,
        'Action',
      );
    }
    const status = STATUS.exec(g.get('status') ?? '')?.[0];
    recipients.push({
      finalRecipient: addressOf(finalRecipient),
      ...optional('originalRecipient', g.get('original-recipient'), addressOf),
      action: action as DsnAction,
      ...(status ? { status } : {}),
      ...optional('diagnosticCode', g.get('diagnostic-code')),
      ...optional('remoteMta', g.get('remote-mta'), typedValue),
      ...optional('lastAttemptDate', g.get('last-attempt-date')),
      ...optional('willRetryUntil', g.get('will-retry-until')),
    });
  }

  const returned = await returnedHeaders(mail);
  const envelopeId = perMessage.get('original-envelope-id');
  const messageId =
    returned?.messageId ??
    angled(perMessage.get('x-original-message-id')) ??
    angled(typeof mail.inReplyTo === 'string' ? mail.inReplyTo : undefined);
  const deliveryHeader = returned?.deliveryHeader;
  return {
    ok: true,
    dsn: {
      ...optional('reportingMta', perMessage.get('reporting-mta'), typedValue),
      ...(envelopeId ? { originalEnvelopeId: bounded(decodeXtext(envelopeId), 100) } : {}),
      ...optional('arrivalDate', perMessage.get('arrival-date')),
      ...(messageId ? { originalMessageId: bounded(messageId, 998) } : {}),
      ...(deliveryHeader ? { originalDeliveryHeader: bounded(deliveryHeader, 100) } : {}),
      recipients,
    },
  };
}

/**
 * What classify (RFC 3463) makes of a failed recipient: the Status code first, else the
 * Diagnostic-Code's reply. The basic code is the diagnostic's, else the status class's (550/450),
 * so that a bare `Status: 5.1.1` reads as the final reply it reports.
 */
export function classifyDsnRecipient(r: DsnRecipientReport): ReplyClass & { reply: string } {
  const reply = dsnReply(r);
  return { ...classifyReply({ reply }), reply };
}

/**
 * The report as one reply line, e.g. `550 5.1.1 <a@example.org>: Recipient address rejected`.
 * A generic status (`x.0.0`) gives way to a specific code in the diagnostic (Exchange and
 * sendmail write `Status: 5.0.0` over `550 5.1.1 User unknown`).
 */
export function dsnReply(r: DsnRecipientReport): string {
  const diagnostic = r.diagnosticCode?.replace(/^[^;]*;\s*/, '').trim() ?? '';
  const basic = /^([245]\d\d)(?:[\s-]|$)/.exec(diagnostic)?.[1];
  const afterBasic = diagnostic.replace(/^[245]\d\d[\s-]*/, '');
  const diagnosticStatus = STATUS.exec(afterBasic)?.[0];
  const rest = (diagnosticStatus ? afterBasic.slice(diagnosticStatus.length) : afterBasic).trim();
  const status =
    r.status && !(r.status.endsWith('.0.0') && diagnosticStatus) ? r.status : (diagnosticStatus ?? r.status);
  if (!status) return bounded(diagnostic || `(${r.action}, no status)`, MAX_FIELD);
  const code = basic ?? `${status[0]}50`;
  return bounded(`${code} ${status}${rest ? ` ${rest}` : ''}`, MAX_FIELD);
}

/**
 * RFC 3464 §2: groups of fields separated by blank lines (per-message, then one per recipient);
 * a line starting with white space continues the field before it (RFC 822 folding). Names are
 * case-insensitive; a field repeated in a group keeps its first value.
 */
function fieldGroups(text: string): Map<string, string>[] {
  const groups: Map<string, string>[] = [];
  let group = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') {
      if (group.size) groups.push(group);
      group = new Map();
      last = undefined;
      continue;
    }
    if (/^[ \t]/.test(line) && last) {
      group.set(last, bounded(`${group.get(last)} ${line.trim()}`, MAX_FIELD));
      continue;
    }
    const m = /^([A-Za-z0-9-]+)[ \t]*:[ \t]*(.*)$/.exec(line);
    if (!m) continue;
    last = m[1]!.toLowerCase();
    if (!group.has(last)) group.set(last, bounded(m[2]!.trim(), MAX_FIELD));
    else last = undefined;
  }
  if (group.size) groups.push(group);
  return groups;
}

/** The headers of the returned message (full or headers only): its Message-ID and our delivery header. */
async function returnedHeaders(
  mail: ParsedMail,
): Promise<{ messageId?: string; deliveryHeader?: string } | undefined> {
  const part = mail.attachments.find((a) => RETURNED_TYPES.has(a.contentType.toLowerCase()));
  if (!part) return undefined;
  const text = part.content.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = end === -1 ? text : text.slice(0, end);
  try {
    const returned = await simpleParser(Buffer.from(`${head}\r\n\r\n`, 'latin1'), {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      checksumAlgo: false,
    });
    const delivery = returned.headers.get('x-sitemail-delivery');
    return {
      ...(returned.messageId ? { messageId: angled(returned.messageId)! } : {}),
      ...(typeof delivery === 'string' && delivery.trim() ? { deliveryHeader: delivery.trim() } : {}),
    };
  } catch {
    // Headers that do not parse still leave the report usable (the envelope id may match).
    return undefined;
  }
}

/** `rfc822; <a@b.example>` → `a@b.example`; another address type stays as written. */
function addressOf(field: string): string {
  const m = /^\s*([^;\s]+)\s*;\s*(.*)$/.exec(field);
  if (!m || m[1]!.toLowerCase() !== 'rfc822') return bounded(field, 320);
  return bounded(
    m[2]!
      .trim()
      .replace(/^<(.*)>$/, '$1')
      .trim(),
    320,
  );
}

/** `dns; mx.example.org` → `mx.example.org`. */
const typedValue = (field: string) => field.replace(/^\s*[^;\s]+\s*;\s*/, '').trim();

/** RFC 3461 §4: xtext, `+XX` for a byte in hex. */
const decodeXtext = (s: string) =>
  s.trim().replace(/\+([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));

/** A Message-ID with its angle brackets, as deliveries keep it. */
function angled(id: string | undefined): string | undefined {
  const v = id?.trim().split(/\s+/)[0];
  if (!v) return undefined;
  return v.startsWith('<') ? v : `<${v}>`;
}

/**
 * Bounded and without control characters: every value ends up in the database (whose text holds
 * no NUL) and in answers, whatever bytes the DSN carried.
 */
function bounded(s: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  const clean = s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, '');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

function optional<K extends string>(
  key: K,
  value: string | undefined,
  map: (v: string) => string = (v) => v,
): { [P in K]?: string } {
  const v = value === undefined ? undefined : map(value);
  return (v ? { [key]: v } : {}) as { [P in K]?: string };
}
