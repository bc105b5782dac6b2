import { mkdirSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface MailSinkOptions {
  /** Default 127.0.0.1: the sink accepts any credentials, so it must not face a network. */
  host?: string;
  /** 0 picks a free port (read it from the result). */
  port: number;
  /** Where emails are kept. Required unless `discard`. */
  dir?: string;
  /** Only count what arrives (benchmarks): nothing is parsed, written or logged per email. */
  discard?: boolean;
  /** One line per received email, as text (the CLI prints these). */
  log?: (line: string) => void;
  /** Or a pino-shaped logger: one info line per received email. Without either, JSON lines on stderr. */
  logger?: { info(obj: object, msg?: string): void };
}

/** What the sink writes beside each `<name>.eml` as `<name>.json`. */
export interface ReceivedEmailSummary {
  file: string;
  envelope: { from: string | null; to: string[] };
  subject: string | null;
  /** The Date header, ISO 8601, or null when absent. */
  date: string | null;
  messageId: string | null;
  receivedAt: string;
  size: number;
  /** The plain-text body, decoded (no quoted-printable line breaks), or null without one. */
  text: string | null;
  /** Every http(s) link of the plain-text body, whole, so a newcomer can follow one from a shell. */
  links: string[];
}

export interface MailSinkStats {
  received: number;
  bytes: number;
}

export interface MailSink {
  port: number;
  stats(): MailSinkStats;
  close(): Promise<void>;
}

const MAX_EMAIL_BYTES = 25 * 1024 * 1024;

/**
 * A development SMTP server that accepts every email and keeps it as `<dir>/<time>-<n>.eml` with
 * a `<time>-<n>.json` summary. Each file appears complete (written aside, then renamed), and the
 * `.json` only after its `.eml`, so a reader that waits for the `.json` never sees half an email.
 */
export async function startMailSink(options: MailSinkOptions): Promise<MailSink> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger;
  const log =
    options.log ??
    (logger
      ? (line: string) => logger.info({ component: 'mail-sink' }, line)
      : (line: string) =>
          process.stderr.write(
            `${JSON.stringify({ level: 30, time: Date.now(), name: 'mail-sink', msg: line })}\n`,
          ));
  const discard = options.discard ?? false;
  if (!discard && !options.dir) throw new Error('mail-sink: dir is required unless discard is set');
  const dir = options.dir ? resolve(options.dir) : '';
  if (!discard) mkdirSync(dir, { recursive: true });

  const stats: MailSinkStats = { received: 0, bytes: 0 };
  let sequence = 0;

  const server = new SMTPServer({
    name: 'mail-sink.localhost',
    banner: 'sitemail development mail sink',
    // No certificate to offer; clients then send in clear text, which is fine on loopback.
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5'],
    // Any credentials are accepted so a site config with PLAIN / CRAM-MD5 can be tried against the sink.
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username ?? 'anonymous' });
    },
    size: MAX_EMAIL_BYTES,
    disableReverseLookup: true,
    logger: false,
    // Pooled clients keep connections open; do not wait the default 30 s for them on close.
    closeTimeout: 1000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (!discard) chunks.push(chunk);
      });
      stream.on('error', callback);
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          const err = Object.assign(new Error(`message exceeds ${MAX_EMAIL_BYTES} bytes`), {
            responseCode: 552,
          });
          callback(err);
          return;
        }
        stats.received++;
        stats.bytes += size;
        if (discard) {
          callback();
          return;
        }
        const n = ++sequence;
        keep(Buffer.concat(chunks), n, session.envelope.mailFrom, session.envelope.rcptTo).then(
          () => callback(),
          (err: Error) => {
            log(`mail-sink: could not keep an email: ${err.message}`);
            callback(Object.assign(new Error('could not store the message'), { responseCode: 451 }));
          },
        );
      });
    },
  });

  async function keep(raw: Buffer, n: number, from: SMTPServerAddress | false, rcptTo: SMTPServerAddress[]) {
    const receivedAt = new Date();
    const name = `${receivedAt.toISOString().replace(/[:.]/g, '-')}-${n}`;
    const eml = join(dir, `${name}.eml`);
    const parsed = await simpleParser(raw, {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
    });
    const summary: ReceivedEmailSummary = {
      file: `${name}.eml`,
      envelope: { from: from ? from.address : null, to: rcptTo.map((r) => r.address) },
      subject: parsed.subject ?? null,
      date: parsed.date ? parsed.date.toISOString() : null,
      messageId: parsed.messageId ?? null,
      receivedAt: receivedAt.toISOString(),
      size: raw.length,
      text: parsed.text ?? null,
      links: parsed.text?.match(/https?:\/\/[^\s<>"]+/g) ?? [],
    };
    await writeAtomically(eml, raw);
    await writeAtomically(join(dir, `${name}.json`), `${JSON.stringify(summary, null, 2)}\n`);
    log(
      `mail-sink: received ${JSON.stringify(summary.subject ?? '')} for ${summary.envelope.to.join(', ')} -> ${eml}`,
    );
  }

  await new Promise<void>((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(options.port, host, () => {
      server.off('error', reject);
      resolvePromise();
    });
  });
  // After start, a client error (a dropped connection) must not crash the process.
  server.on('error', (err) => log(`mail-sink: ${err.message}`));
  const address = server.server.address() as AddressInfo;

  return {
    port: address.port,
    stats: () => ({ ...stats }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function writeAtomically(path: string, data: Buffer | string) {
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}
