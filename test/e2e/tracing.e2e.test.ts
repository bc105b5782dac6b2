/**
 * End to end, one trace from a request in accounts to the email it causes: accounts and
 * notifications as separate processes over Kafka (the librdkafka mock cluster, or KAFKA_BROKERS),
 * each with its own database, notifications sending to the testkit's real SMTP server, both
 * exporting spans over OTLP/HTTP to a collector in this process (the standard OTEL_* variables).
 *
 * A sign-up sent with a known `traceparent` gives a verification email whose X-Sitemail-Trace-Id
 * is that trace id, and the collector holds the spans of both services in that one trace; a
 * sign-up without one learns its trace id from `traceresponse`; a fleet event without a
 * `traceparent` is delivered in a trace of its own. No span carries an address, a password, a link
 * code or a key.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type CodeMonitorTriggered, sources, topics, toWireMessage } from '@sitemail/contracts';
import type { ReceivedEmail } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { Accounts, basic, linkIn, newPerson } from './client.ts';
import { eventually, type Stack, startStack } from './stack.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: unknown[];
  service: string;
}

/** An OTLP/HTTP JSON collector: every span it was sent, with the service that sent it. */
const spans: OtlpSpan[] = [];
const exports: string[] = [];
const collector = createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => {
    raw += chunk;
  });
  req.on('end', () => {
    exports.push(raw);
    const body = JSON.parse(raw) as {
      resourceSpans: {
        resource: { attributes: { key: string; value: { stringValue?: string } }[] };
        scopeSpans: { spans: Omit<OtlpSpan, 'service'>[] }[];
      }[];
    };
    for (const rs of body.resourceSpans) {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
      for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, service });
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});

let stack: Stack;
let accounts: Accounts;

before(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const { port } = collector.address() as AddressInfo;
  stack = await startStack({
    label: 'tracing',
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_BSP_SCHEDULE_DELAY: '200' },
  });
  accounts = new Accounts(stack.accounts.url, stack.secrets);
});

after(async () => {
  await stack?.stop();
  await new Promise<void>((resolve) => collector.close(() => resolve()));
});

const traceIdIn = (mail: ReceivedEmail) => mail.headers.get('x-sitemail-trace-id');
const signUp = (p: ReturnType<typeof newPerson>, headers: Record<string, string> = {}) =>
  fetch(`${stack.accounts.url}/sign-up`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(p),
  });
/** The spans of one trace once they include every name in `names` (exports are batched). */
const traceWith = (traceId: string, names: string[]) =>
  eventually(`spans ${names.join(', ')} of trace ${traceId}`, async () => {
    const of = spans.filter((s) => s.traceId === traceId);
    return names.every((n) => of.some((s) => s.name === n)) ? of : undefined;
  });

describe('end to end: one trace from the request to the email', () => {
  it('a sign-up with a traceparent: the verification email carries its trace id, and both services’ spans are in that trace', async () => {
    const traceId = randomBytes(16).toString('hex');
    const p = newPerson('traced');
    const res = await signUp(p, { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('traceresponse') ?? '', new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

    const mail = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    assert.equal(traceIdIn(mail), traceId);
    stack.secrets.add(
      linkIn(mail, `${stack.siteConfig.externalURL}/-/verify-email`).searchParams.get('code') ?? '',
    );

    const trace = await traceWith(traceId, [
      'POST /sign-up',
      'command CreateUser',
      'handle EmailVerificationRequested',
      'deliver email-verification',
      'smtp send',
    ]);
    const one = (name: string) => trace.find((s) => s.name === name)!;
    assert.equal(one('POST /sign-up').service, 'sitemail-accounts');
    assert.equal(one('command CreateUser').service, 'sitemail-accounts');
    assert.equal(one('handle EmailVerificationRequested').service, 'sitemail-notifications');
    // Parent links across the processes: the command's context travelled in the outbox and on Kafka.
    assert.equal(one('command CreateUser').parentSpanId, one('POST /sign-up').spanId);
    assert.equal(one('handle EmailVerificationRequested').parentSpanId, one('command CreateUser').spanId);
    assert.equal(
      one('deliver email-verification').parentSpanId,
      one('handle EmailVerificationRequested').spanId,
    );
    assert.equal(one('smtp send').parentSpanId, one('deliver email-verification').spanId);
    stack.secrets.add(p.email);
    stack.secrets.add(p.password);
  });

  it('a sign-up without one: the response’s traceresponse names the trace the email carries', async () => {
    const p = newPerson('untraced');
    const res = await signUp(p);
    assert.equal(res.status, 201);
    const traceId = /^00-([0-9a-f]{32})-/.exec(res.headers.get('traceresponse') ?? '')?.[1];
    assert.ok(traceId, 'traceresponse');
    const mail = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    assert.equal(traceIdIn(mail), traceId);
    stack.secrets.add(p.email);
    stack.secrets.add(p.password);
  });

  it('a fleet event without traceparent is delivered, in a trace of its own', async () => {
    const p = newPerson('fleet');
    const user = await accounts.signUp(p);
    const verification = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    const link = linkIn(verification, `${stack.siteConfig.externalURL}/-/verify-email`);
    stack.secrets.add(link.searchParams.get('code') ?? '');
    assert.equal((await accounts.follow(link)).status, 200);
    // The monitor's topic can overtake the accounts topic: until notifications has handled
    // EmailVerified the monitor's email is suppressed primary-unverified. An API-key email is sent
    // only to a primary notifications knows verified, so its arrival says it does.
    await accounts.createKey(user.id, basic(p.username, p.password), 'barrier');
    await stack.mailbox.waitFor(p.email, /^An API key was created/);

    const event: CodeMonitorTriggered = {
      id: randomUUID(),
      type: 'CodeMonitorTriggered',
      userId: user.id,
      position: 1,
      time: new Date().toISOString(),
      schemaVersion: 1,
      data: {
        monitorId: randomUUID(),
        monitorName: 'Traced monitor',
        query: 'TODO',
        resultCount: 1,
        resultsPath: '/code-monitoring/m1/results',
      },
    };
    const message = toWireMessage(event, sources.codeMonitoring);
    assert.equal(message.headers.traceparent, undefined);
    const producer = new Kafka({
      brokers: stack.kafka.brokers,
      clientId: 'code-monitoring',
      logLevel: logLevel.NOTHING,
    }).producer();
    await producer.connect();
    try {
      await producer.send({ topic: topics.codeMonitoringEvents, messages: [message] });
    } finally {
      await producer.disconnect();
    }
    // Past the verification: the monitor's email waits until the address is verified in notifications.
    const mail = await stack.mailbox.waitFor(p.email, / new results? on /);
    const traceId = String(traceIdIn(mail));
    assert.match(traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(traceId, traceIdIn(verification));
    const trace = await traceWith(traceId, [
      'handle CodeMonitorTriggered',
      'deliver code-monitor-triggered',
      'smtp send',
    ]);
    assert.equal(
      trace.find((s) => s.name === 'handle CodeMonitorTriggered')?.parentSpanId ?? '',
      '',
      'a root span',
    );
    stack.secrets.add(p.email);
    stack.secrets.add(p.password);
  });

  it('no exported span carries an address, a password, a link code, an API key or the SMTP password', async () => {
    assert.ok(spans.length > 0);
    const everything = exports.join('\n');
    for (const secret of [stack.smtpUser.password, ...stack.secrets].filter((s) => s.length > 0)) {
      assert.ok(!everything.includes(secret), `an exported span carries ${secret.slice(0, 6)}…`);
    }
    assert.deepEqual(stack.leakedSecrets(), []);
  });
});
