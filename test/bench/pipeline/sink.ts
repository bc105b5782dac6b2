/**
 * The bench's SMTP sink, in its own process (forked with an IPC channel by pipeline.bench.ts), so
 * its CPU is not the bench driver's nor a service's. It accepts every message without auth or TLS
 * (loopback only) and reports, per accepted message, the recipient, the Message-ID and the accept
 * time (wall clock in ms with sub-ms precision: performance.timeOrigin + performance.now(), which
 * the parent reads the same way, so the two clocks compare). Reports go in batches every 10 ms.
 * The first message per recipient domain is also sent whole (`sample`), so the raw nodemailer
 * baseline can send the very email the pipeline sent.
 */
import { SMTPServer } from 'smtp-server';

export interface Accepted {
  to: string;
  messageId: string | undefined;
  at: number;
}

export type SinkReport =
  | { kind: 'listening'; port: number }
  | { kind: 'accepted'; batch: Accepted[] }
  | { kind: 'sample'; domain: string; raw: string };

const now = () => performance.timeOrigin + performance.now();
const send = (report: SinkReport) => process.send?.(report);

let pending: Accepted[] = [];
const flush = () => {
  if (pending.length === 0) return;
  send({ kind: 'accepted', batch: pending });
  pending = [];
};
setInterval(flush, 10).unref();

const sampled = new Set<string>();
const headerEnd = Buffer.from('\r\n\r\n');

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['AUTH', 'STARTTLS'],
  banner: 'bench sink',
  // Thousands of messages over a few pooled connections: no per-connection limits here.
  maxClients: 1000,
  logger: false,
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    let size = 0;
    let headers: string | undefined;
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (headers === undefined) {
        const joined = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
        const end = joined.indexOf(headerEnd);
        if (end >= 0) headers = joined.subarray(0, end).toString('latin1');
      }
    });
    stream.on('end', () => {
      const to = session.envelope.rcptTo[0]?.address.toLowerCase() ?? '';
      const messageId = /^message-id:\s*(\S+)/im.exec(headers ?? '')?.[1];
      pending.push({ to, messageId, at: now() });
      callback();
      const domain = to.split('@')[1] ?? '';
      if (!sampled.has(domain)) {
        sampled.add(domain);
        send({ kind: 'sample', domain, raw: Buffer.concat(chunks, size).toString('utf8') });
      }
    });
  },
});

server.on('error', (err) => {
  console.error(`bench sink: ${err.message}`);
});

server.listen(0, '127.0.0.1', () => {
  const address = server.server.address();
  send({ kind: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
});

// The parent going away (or asking) ends the sink: nothing here may outlive a bench run.
process.on('disconnect', () => {
  flush();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
});
process.on('message', (m: unknown) => {
  if (m === 'flush') flush();
});
