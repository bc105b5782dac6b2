import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { generate } from 'selfsigned';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';

/** A real SMTP server for tests: what it demands, what it answers, and what it saw. */
export interface SmtpServerOptions {
  /** The mechanism the server offers and demands; 'none' offers no AUTH at all. Default 'none'. */
  auth?: 'PLAIN' | 'CRAM-MD5' | 'LOGIN' | 'XOAUTH2' | 'none';
  /** Accepted credentials when `auth` is a password mechanism. */
  users?: { username: string; password: string }[];
  /**
   * With `auth: 'XOAUTH2'`: whether the bearer token is good for this mailbox. A refusal is
   * answered as Google and Microsoft do: a 334 challenge carrying `{"status":"401",...}`, then
   * 535 once the client sends the empty line.
   */
  acceptToken?: (username: string, accessToken: string) => boolean;
  /** The mechanisms listed in EHLO, in order, when more than `auth` (e.g. `['LOGIN', 'XOAUTH2']` as Microsoft 365). */
  offer?: ('PLAIN' | 'CRAM-MD5' | 'LOGIN' | 'XOAUTH2')[];
  /** 'starttls' offers STARTTLS (and demands it before AUTH), 'implicit' is TLS from the first byte. Default 'none'. */
  tls?: 'starttls' | 'implicit' | 'none';
  /** Bind address. Default 127.0.0.1. */
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Scripted replies, see {@link SmtpScriptStep}. */
  script?: SmtpScriptStep[];
  /** 'greeting': never greets; 'data': takes the message and never answers it. */
  hang?: 'greeting' | 'data';
  /** Offer the DSN extension (RFC 3461) in EHLO and keep what the client asked (`envelope.dsn`). Default false. */
  dsn?: boolean;
}

/** Where a scripted reply is given: at connect (instead of the greeting), or to MAIL, RCPT or DATA. */
export type SmtpStage = 'connect' | 'mail' | 'rcpt' | 'data';

/**
 * Reply `code` (e.g. 421, 450, 550) at `stage` for the next `times` occurrences of that stage
 * (default: every one). Steps for the same stage are used in order, so
 * `[{ stage: 'rcpt', code: 421, times: 1 }]` answers 421 once and then accepts.
 */
export interface SmtpScriptStep {
  stage: SmtpStage;
  code: number;
  message?: string;
  times?: number;
}

export interface ReceivedEmail {
  sessionId: string;
  envelope: {
    from: string;
    to: string[];
    /** With the `dsn` option: RET and ENVID of MAIL FROM, NOTIFY of each RCPT TO (upper case). */
    dsn?: { ret: string | null; envid: string | null; notify: string[][] };
  };
  /** Header names in lower case, as mailparser gives them. */
  headers: Map<string, unknown>;
  subject: string | undefined;
  from: string | undefined;
  to: string | undefined;
  messageId: string | undefined;
  text: string | undefined;
  html: string | undefined;
  raw: string;
  /** The name the client gave in EHLO/HELO (lower-cased by the server). */
  ehloName: string;
  /** The client's address as seen by the server (reverse lookup is off), e.g. `[127.0.0.1]`. */
  clientHostname: string;
  authenticatedUser: string | undefined;
  authMethod: string | undefined;
  /** Whether the message travelled over TLS (implicit or after STARTTLS). */
  secure: boolean;
  /** When the server had the whole message (end of DATA), by the server's clock: rates are measured here. */
  receivedAt: Date;
}

export interface AuthAttempt {
  sessionId: string;
  method: string;
  username: string | undefined;
  /** Whether the credentials matched; the password itself is never kept. */
  success: boolean;
  /** The bearer token an XOAUTH2 client sent (test tokens, kept to assert which one was used). */
  accessToken?: string;
  secure: boolean;
}

/** One command line as the server received it, credentials already hidden by smtp-server. */
export interface ReceivedCommand {
  sessionId: string;
  /** The verb, e.g. EHLO, STARTTLS, AUTH, MAIL. */
  command: string;
}

export interface TestSmtpServer {
  host: string;
  port: number;
  /** The throwaway self-signed certificate the server presents (TLS modes only). */
  certificatePem: string;
  received: ReceivedEmail[];
  authAttempts: AuthAttempt[];
  /** Every command any client sent, in order; proves e.g. that no AUTH was ever sent. */
  commands: ReceivedCommand[];
  /** Sessions (connections) the server accepted, in order. */
  sessions: { id: string; remoteAddress: string; secure: boolean; closed: boolean }[];
  /** Resolves once `n` emails in total have been received; rejects after `timeoutMs`. */
  waitForEmails(n: number, timeoutMs?: number): Promise<ReceivedEmail[]>;
  /** Replaces the scripted replies (counters start again). */
  setScript(script: SmtpScriptStep[]): void;
  /** Starts or stops hanging, for the connections that come next. */
  setHang(hang: SmtpServerOptions['hang'] | undefined): void;
  close(): Promise<void>;
}

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** One throwaway certificate per test process: generating one costs tens of milliseconds. */
function throwawayCertificate(): Promise<{ key: string; cert: string }> {
  certificate ??= generate([{ name: 'commonName', value: 'smtp.test.invalid' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 7 * 24 * 3600 * 1000),
    extensions: [
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 2, value: 'smtp.test.invalid' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  }).then((pems) => ({ key: pems.private, cert: pems.cert }));
  return certificate;
}

function scriptedError(code: number, message: string | undefined): Error & { responseCode: number } {
  const text =
    message ?? (code >= 500 ? `${code} scripted permanent failure` : `${code} scripted temporary failure`);
  // smtp-server sends the message after the code, so keep the code out of the text
  return Object.assign(new Error(text.replace(/^\d{3}\s*/, '')), { responseCode: code });
}

/** Starts a real SMTP server (smtp-server); see {@link SmtpServerOptions}. */
export async function startSmtpServer(opts: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const auth = opts.auth ?? 'none';
  const tls = opts.tls ?? 'none';
  const users = opts.users ?? [];
  const { key, cert } = await throwawayCertificate();

  const received: ReceivedEmail[] = [];
  const authAttempts: AuthAttempt[] = [];
  const commands: ReceivedCommand[] = [];
  const sessions: TestSmtpServer['sessions'] = [];
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };

  let script: { step: SmtpScriptStep; used: number }[] = [];
  const setScript = (steps: SmtpScriptStep[]) => {
    script = steps.map((step) => ({ step, used: 0 }));
  };
  setScript(opts.script ?? []);
  // The scripted reply for this occurrence of `stage`, if any step still has uses left.
  const scripted = (stage: SmtpStage): Error | undefined => {
    const entry = script.find(
      (s) => s.step.stage === stage && s.used < (s.step.times ?? Number.POSITIVE_INFINITY),
    );
    if (!entry) return undefined;
    entry.used++;
    return scriptedError(entry.step.code, entry.step.message);
  };

  let hang = opts.hang;
  const authMethodBySession = new Map<string, string>();

  const disabledCommands: string[] = [];
  if (auth === 'none') disabledCommands.push('AUTH');
  if (tls !== 'starttls') disabledCommands.push('STARTTLS');

  // smtp-server's logger is the only place that sees every command line (with AUTH arguments
  // already masked), including commands it rejects before any handler runs.
  const noop = () => {};
  const logger = {
    level: noop,
    trace: noop,
    info: noop,
    warn: noop,
    error: noop,
    fatal: noop,
    debug: (entry: { tnx?: string; cid?: string; command?: string }) => {
      if (entry?.tnx === 'command' && entry.cid && entry.command) {
        commands.push({ sessionId: entry.cid, command: entry.command });
      }
    },
  };

  const options: SMTPServerOptions = {
    secure: tls === 'implicit',
    key,
    cert,
    name: 'smtp.test.invalid',
    authMethods: auth === 'none' ? [] : (opts.offer ?? [auth]),
    authOptional: auth === 'none',
    // Without STARTTLS on offer (tls 'none') a client may only authenticate in clear text; with
    // STARTTLS on offer the server demands it first, like a real submission server.
    allowInsecureAuth: tls === 'none',
    disabledCommands,
    disableReverseLookup: true,
    hideDSN: !opts.dsn,
    // A hung client connection must not keep close() waiting for the default 30 s.
    closeTimeout: 200,
    socketTimeout: 30_000,
    logger: logger as unknown as SMTPServerOptions['logger'],
    onConnect(session: SMTPServerSession, callback: (err?: Error | null) => void) {
      sessions.push({
        id: session.id,
        remoteAddress: session.remoteAddress,
        secure: session.secure,
        closed: false,
      });
      if (hang === 'greeting') return; // never greet: the client must time out
      callback(scripted('connect'));
    },
    onSecure(_socket, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const s = sessions.find((x) => x.id === session.id);
      if (s) s.secure = true;
      callback();
    },
    onClose(session: SMTPServerSession) {
      const s = sessions.find((x) => x.id === session.id);
      if (s) s.closed = true;
    },
    onAuth(
      attempt: SMTPServerAuthentication,
      session: SMTPServerSession,
      callback: (err: Error | null | undefined, response?: { user?: unknown }) => void,
    ) {
      const user = users.find((u) => u.username === attempt.username);
      const success =
        attempt.method === 'XOAUTH2'
          ? (opts.acceptToken?.(attempt.username ?? '', attempt.accessToken ?? '') ?? false)
          : user !== undefined &&
            (attempt.method === 'CRAM-MD5'
              ? attempt.validatePassword(user.password)
              : attempt.password === user.password);
      authAttempts.push({
        sessionId: session.id,
        method: attempt.method,
        username: attempt.username,
        success,
        secure: session.secure,
        ...(attempt.method === 'XOAUTH2' ? { accessToken: attempt.accessToken } : {}),
      });
      if (!success && attempt.method === 'XOAUTH2') {
        return callback(null, {
          data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' },
        } as {
          user?: unknown;
        });
      }
      if (!success) {
        return callback(Object.assign(new Error('5.7.8 Authentication failed'), { responseCode: 535 }));
      }
      authMethodBySession.set(session.id, attempt.method);
      callback(null, { user: attempt.username });
    },
    onMailFrom(_address, _session, callback) {
      callback(scripted('mail'));
    },
    onRcptTo(_address, _session, callback) {
      callback(scripted('rcpt'));
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const receivedAt = new Date();
        if (hang === 'data') return; // took the message, never answers: the client must time out
        const failure = scripted('data');
        if (failure) return callback(failure);
        const raw = Buffer.concat(chunks);
        simpleParser(raw)
          .then((mail: ParsedMail) => {
            received.push(toReceived(mail, raw, session, authMethodBySession.get(session.id), receivedAt));
            callback();
            notify();
          })
          .catch((err: Error) => callback(err));
      });
    },
  };

  const server = new SMTPServer(options);
  server.on('error', () => {
    // connection-level errors (a client hanging up mid-TLS) are part of what tests provoke
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    host,
    port,
    certificatePem: cert,
    received,
    authAttempts,
    commands,
    sessions,
    setScript,
    setHang(next) {
      hang = next;
    },
    waitForEmails(n, timeoutMs = 10_000) {
      if (received.length >= n) return Promise.resolve(received.slice());
      return new Promise((resolve, reject) => {
        const check = () => {
          if (received.length >= n) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(received.slice());
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${n} emails within ${timeoutMs} ms, got ${received.length}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close() {
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function addressText(value: ParsedMail['from'] | ParsedMail['to']): string | undefined {
  if (!value) return undefined;
  return Array.isArray(value) ? value.map((v) => v.text).join(', ') : value.text;
}

function toReceived(
  mail: ParsedMail,
  raw: Buffer,
  session: SMTPServerSession,
  authMethod: string | undefined,
  receivedAt: Date,
): ReceivedEmail {
  const { mailFrom, rcptTo, dsn } = session.envelope;
  return {
    sessionId: session.id,
    envelope: {
      from: mailFrom ? mailFrom.address : '',
      to: rcptTo.map((r) => r.address),
      ...(dsn
        ? {
            dsn: {
              ret: dsn.ret,
              envid: dsn.envid,
              notify: rcptTo.map((r) => (r.dsn?.notify ?? []).map((n) => n.toUpperCase())),
            },
          }
        : {}),
    },
    headers: mail.headers as Map<string, unknown>,
    subject: mail.subject,
    from: addressText(mail.from),
    to: addressText(mail.to),
    messageId: mail.messageId,
    text: mail.text,
    html: typeof mail.html === 'string' ? mail.html : undefined,
    raw: raw.toString('utf8'),
    ehloName: session.hostNameAppearsAs,
    clientHostname: session.clientHostname,
    authenticatedUser: typeof session.user === 'string' ? session.user : undefined,
    authMethod,
    secure: session.secure,
    receivedAt,
  };
}
