/**
 * What the bench does to the product: the commands (a site admin creating a user through the admin
 * UI flow, `POST /users` with `origin: "site-admin"`: one HTTP call, committed when it answers 201,
 * and exactly one email, the set-password link), the raw nodemailer baseline, and the bookkeeping
 * that matches each command to the email the sink accepted for it (by recipient: one fresh address
 * per command).
 */
import { Agent, request } from 'node:http';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { now, type Sink } from './processes.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Keep-alive connections, as a real client of the API would hold. */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

export interface HttpReply {
  status: number;
  body: string;
  /** When the whole answer had arrived (the command's commit is before it). */
  at: number;
}

export function post(url: string, body: unknown, auth?: string): Promise<HttpReply> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(auth ? { authorization: auth } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), at: now() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The first user becomes site admin and gets its first API key with its password (as test/e2e does). */
export async function bootstrapAdmin(accountsUrl: string): Promise<string> {
  const person = {
    username: 'bench-admin',
    email: 'admin@admin.bench.example.com',
    password: 'bench-admin-pw-1',
  };
  const signUp = await post(`${accountsUrl}/sign-up`, person);
  if (signUp.status !== 201) throw new Error(`admin sign-up: HTTP ${signUp.status} ${signUp.body}`);
  const user = JSON.parse(signUp.body) as { id: string; siteAdmin: boolean };
  if (!user.siteAdmin) throw new Error('the first user is not site admin: the database was not fresh');
  const basic = `Basic ${Buffer.from(`${person.username}:${person.password}`).toString('base64')}`;
  const key = await post(`${accountsUrl}/users/${user.id}/api-keys`, { name: 'bench' }, basic);
  if (key.status !== 201) throw new Error(`admin API key: HTTP ${key.status} ${key.body}`);
  return `token ${(JSON.parse(key.body) as { secret: string }).secret}`;
}

/** Commands sent and emails accepted, matched by recipient. */
export class Ledger {
  /** Recipient → when its command was committed (HTTP answer received). */
  readonly committed = new Map<string, number>();
  readonly sentAt = new Map<string, number>();
  /** Recipient → every accept time the sink reported for it (more than one is a duplicate). */
  readonly accepted = new Map<string, number[]>();
  readonly messageIds = new Map<string, number>();
  readonly failures: string[] = [];

  constructor(sink: Sink) {
    sink.onAccepted((batch) => {
      for (const a of batch) {
        this.accepted.set(a.to, [...(this.accepted.get(a.to) ?? []), a.at]);
        if (a.messageId) this.messageIds.set(a.messageId, (this.messageIds.get(a.messageId) ?? 0) + 1);
      }
    });
  }

  /**
   * Resolves once every one of `recipients` has an email, or once no new one has arrived for
   * `stallMs` (then some are missing): a backlog that is still draining is waited for, however long.
   */
  async received(recipients: string[], stallMs: number): Promise<{ missing: number; lastAt: number }> {
    let missing = recipients.length;
    let progressAt = Date.now();
    for (;;) {
      const now = recipients.filter((r) => !this.accepted.has(r)).length;
      if (now < missing) progressAt = Date.now();
      missing = now;
      if (missing === 0 || Date.now() - progressAt > stallMs) {
        const lastAt = Math.max(0, ...recipients.map((r) => this.accepted.get(r)?.[0] ?? 0));
        return { missing, lastAt };
      }
      await sleep(20);
    }
  }
}

const address = (phase: string, i: number) =>
  `${phase}-${String(i).padStart(6, '0')}@${phase}.bench.example.com`;

async function createUser(accountsUrl: string, auth: string, ledger: Ledger, to: string): Promise<void> {
  ledger.sentAt.set(to, now());
  const reply = await post(
    `${accountsUrl}/users`,
    { username: to.split('@')[0], email: to, origin: 'site-admin' },
    auth,
  ).catch((err: Error) => ({ status: 0, body: err.message, at: now() }));
  if (reply.status === 201) ledger.committed.set(to, reply.at);
  else if (ledger.failures.length < 20)
    ledger.failures.push(`POST /users ${to}: ${reply.status} ${reply.body}`);
}

/** `n` commands as fast as `concurrency` clients in a loop can send them. */
export async function burst(o: {
  accountsUrl: string;
  auth: string;
  ledger: Ledger;
  phase: string;
  n: number;
  concurrency: number;
}): Promise<{ recipients: string[]; startedAt: number; lastCommitAt: number }> {
  const recipients = Array.from({ length: o.n }, (_, i) => address(o.phase, i));
  let next = 0;
  const startedAt = now();
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, o.n) }, async () => {
      while (next < recipients.length) await createUser(o.accountsUrl, o.auth, o.ledger, recipients[next++]!);
    }),
  );
  return { recipients, startedAt, lastCommitAt: now() };
}

/**
 * `n` commands at a steady `ratePerSecond`, open loop: each is sent at its scheduled time whether
 * or not the earlier ones have been answered (a slow service shows as latency, not as a slower load).
 */
export async function steady(o: {
  accountsUrl: string;
  auth: string;
  ledger: Ledger;
  phase: string;
  n: number;
  ratePerSecond: number;
}): Promise<{ recipients: string[]; behindMs: number }> {
  const recipients = Array.from({ length: o.n }, (_, i) => address(o.phase, i));
  const start = now() + 20;
  const inFlight = new Set<Promise<void>>();
  let behindMs = 0;
  for (let i = 0; i < o.n; i++) {
    const due = start + (i * 1000) / o.ratePerSecond;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    behindMs = Math.max(behindMs, now() - due);
    const p = createUser(o.accountsUrl, o.auth, o.ledger, recipients[i]!).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return { recipients, behindMs };
}

/**
 * The baseline: raw pooled nodemailer (the pool size the service's mailer uses) sending `n` copies of
 * the email the pipeline sent (parsed from the sink's sample and composed again by nodemailer, as the
 * service composes it), each to its own address, to the same sink. Timed like the pipeline: from the
 * first send to the sink's accept of the last.
 */
export async function rawPooled(o: {
  sink: Sink;
  ledger: Ledger;
  sampleRaw: string;
  n: number;
  poolSize: number;
}): Promise<{ startedAt: number; lastAt: number; missing: number }> {
  const parsed = await simpleParser(o.sampleRaw);
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: o.sink.port,
    secure: false,
    ignoreTLS: true,
    pool: true,
    maxConnections: o.poolSize,
  });
  const recipients = Array.from({ length: o.n }, (_, i) => address('raw', i));
  const from = parsed.from?.text ?? 'bench@bench.example.com';
  const startedAt = now();
  await Promise.all(
    recipients.map((to) =>
      transport.sendMail({
        from,
        to,
        subject: parsed.subject ?? '',
        text: parsed.text ?? '',
        ...(typeof parsed.html === 'string' ? { html: parsed.html } : {}),
        headers: { 'Auto-Submitted': 'auto-generated' },
      }),
    ),
  );
  transport.close();
  const { missing, lastAt } = await o.ledger.received(recipients, 30_000);
  return { startedAt, lastAt, missing };
}
