/**
 * The chaos suite's SMTP sink, a process of its own (so counting emails never competes with the
 * harness's event loop): smtp-server, no authentication, and a control port over HTTP. It counts
 * every accepted message by its Message-ID (the duplicate check) and keeps no bodies: only the
 * header block is scanned, so one sink takes what several notifications instances send.
 *
 * Fault modes (POST /mode with JSON): `{ down: true }` closes the listener and drops every
 * connection (connection refused until `{ down: false }`); `{ greet421: true }` greets every new
 * connection with `421 4.7.0 Try again later, closing connection` (a throttling storm, as Gmail
 * words it); `{ share550: 0.1 }` answers that share of messages (chosen by a hash of the
 * Message-ID, so the same email always gets the same answer) `550 5.6.0` at the end of DATA (a
 * refusal of the message, not of the address: nothing is put on a suppression list);
 * `{ dataDelayMs: 1500 }` holds the reply to DATA that long after the message was taken.
 *
 * A message counts as accepted once the sink has all of it and decided to answer 250, before the
 * delayed answer is sent: a client killed in between is the at-least-once window (the email
 * arrived, its sender never learnt it).
 *
 * Run: `node --import tsx test/chaos/sink.ts`; prints `ready <smtpPort> <controlPort>`.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

interface Mode {
  down: boolean;
  greet421: boolean;
  share550: number;
  dataDelayMs: number;
}

const mode: Mode = { down: false, greet421: false, share550: 0, dataDelayMs: 0 };
/**
 * [Message-ID, accepted at (ms since epoch), key] per acceptance, duplicates included, in order.
 * The key names the email the harness expects: the `cx-…` token it put in the event (it reaches
 * the subject), else the recipient (one email per user in the accounts scenarios).
 */
const accepted: [string, number, string][] = [];
/** The key of every message refused with 550, once per refusal (a retried 5xx would show twice). */
const refused550: string[] = [];
let greeted421 = 0;
let connections = 0;
let inData = 0;
const sockets = new Set<Socket>();

const refuses = (messageId: string) =>
  mode.share550 > 0 &&
  createHash('sha256').update(messageId).digest().readUInt32BE(0) / 2 ** 32 < mode.share550;

function newServer(): SMTPServer {
  const server = new SMTPServer({
    name: 'sink.chaos.invalid',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 100,
    size: 10 * 1024 * 1024,
    onConnect(_session, callback) {
      connections++;
      if (mode.greet421) {
        greeted421++;
        return callback(
          Object.assign(new Error('4.7.0 Try again later, closing connection'), { responseCode: 421 }),
        );
      }
      callback();
    },
    onData(stream, session, callback) {
      inData++;
      let head = '';
      let headDone = false;
      stream.on('data', (chunk: Buffer) => {
        if (headDone) return;
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0) {
          head = head.slice(0, end);
          headDone = true;
        }
      });
      stream.on('end', () => {
        const messageId = /^message-id:\s*(<[^>\r\n]+>)/im.exec(head)?.[1] ?? '<none>';
        const answer = () => {
          inData--;
          if (refuses(messageId)) {
            return callback(
              Object.assign(new Error('5.6.0 Message content rejected (chaos sink)'), { responseCode: 550 }),
            );
          }
          callback();
        };
        // The token is looked for in the Subject only: other headers carry random base64url
        // (the List-Unsubscribe URL's token, before Subject in nodemailer's order) that holds
        // "cx-…" by chance in ~1 of 6,600 tokens, which once keyed an email under a wrong name.
        const subject = /^subject:[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)/im.exec(head)?.[1] ?? '';
        const key =
          /cx-[a-z0-9]+/.exec(subject)?.[0] ?? session.envelope.rcptTo.map((r) => r.address).join(',');
        if (refuses(messageId)) refused550.push(key);
        else accepted.push([messageId, Date.now(), key]);
        if (mode.dataDelayMs > 0) setTimeout(answer, mode.dataDelayMs);
        else answer();
      });
    },
  });
  server.on('error', () => {
    // a client vanishing mid-session (a SIGKILLed instance) is what the suite provokes
  });
  server.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return server;
}

let smtp = newServer();
const listen = (port: number) =>
  new Promise<number>((resolve, reject) => {
    smtp.server.once('error', reject);
    smtp.listen(port, '127.0.0.1', () => resolve((smtp.server.address() as AddressInfo).port));
  });
const smtpPort = await listen(Number(process.env.SINK_PORT ?? 0));

async function setDown(down: boolean) {
  if (down === mode.down) return;
  mode.down = down;
  if (down) {
    const closing = new Promise<void>((resolve) => smtp.server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    inData = 0;
    await closing;
  } else {
    smtp = newServer();
    await listen(smtpPort);
  }
}

const control = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://sink');
  let body = '';
  req.on('data', (c: Buffer) => {
    body += c.toString();
  });
  req.on('end', async () => {
    try {
      if (req.method === 'POST' && url.pathname === '/mode') {
        const next = JSON.parse(body || '{}') as Partial<Mode>;
        if (next.greet421 !== undefined) mode.greet421 = next.greet421;
        if (next.share550 !== undefined) mode.share550 = next.share550;
        if (next.dataDelayMs !== undefined) mode.dataDelayMs = next.dataDelayMs;
        if (next.down !== undefined) await setDown(next.down);
        res.end(JSON.stringify(mode));
      } else if (req.method === 'POST' && url.pathname === '/reset') {
        accepted.length = 0;
        refused550.length = 0;
        greeted421 = 0;
        connections = 0;
        res.end('{}');
      } else if (url.pathname === '/stats') {
        const from = Number(url.searchParams.get('from') ?? 0);
        res.end(
          JSON.stringify({
            total: accepted.length,
            accepted: accepted.slice(from),
            refused550,
            greeted421,
            connections,
            inData,
            mode,
          }),
        );
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    } catch (err) {
      res.statusCode = 400;
      res.end(JSON.stringify({ error: (err as Error).message }));
    }
  });
});
await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
process.stdout.write(`ready ${smtpPort} ${(control.address() as AddressInfo).port}\n`);
// The harness closes stdin when it is done (or dies): the sink never outlives it.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
