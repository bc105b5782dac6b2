/**
 * Traces in notifications, recorded by an in-memory exporter behind the service kit's provider (one
 * per process: this file's), over the real parts: the in-process bus, the database, the worker and
 * the testkit's SMTP server. An event whose message carries a `traceparent` is handled in that
 * trace, its delivery row keeps the handling's context, the send continues it, and the email
 * names the trace in `X-Sitemail-Trace-Id`; an event without one starts its own trace and is
 * delivered all the same; a test email names its request's trace.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { type Bus, inProcessBus, type Publisher } from '@sitemail/bus';
import { apiKeySecretSha256, type FleetEvent, topics, toWireMessage } from '@sitemail/contracts';
import { startTracing, type Tracing } from '@sitemail/service-kit';
import { startSmtpServer, type TestDatabase, type TestSmtpServer, testDatabaseKind } from '@sitemail/testkit';
import Fastify, { type FastifyInstance } from 'fastify';
import { Stream, testLinkKey } from '../test/events.ts';
import { eventually, notificationsDb, siteFor } from '../test/harness.ts';
import { notificationsApp } from './app.ts';
import { handleEvent } from './application/handle-event.ts';
import { TRACE_ID_HEADER } from './smtp/send-span.ts';

const exporter = new InMemorySpanExporter();
const PRODUCER_TRACE = '5b8efff798038103d269b633813fc60c';
const PRODUCER_SPAN = 'eee19b7ec3c1b174';
const ADMIN_KEY = 'sitemail_admin-secret-0123456789abcdefghijklmnopqrstuvw';
/** A verification request whose link is still valid when the worker sends it. */
const verification = (user: Stream, email: string, token: string) =>
  user.next('EmailVerificationRequested', {
    email,
    token: user.seal(token, 'EmailVerificationRequested'),
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
const traceHeader = (headers: Map<string, unknown>) => headers.get(TRACE_ID_HEADER.toLowerCase());

describe(`notifications traces (${testDatabaseKind()})`, () => {
  let tracing: Tracing;
  let db: TestDatabase;
  let smtp: TestSmtpServer;
  let bus: Bus;
  let publisher: Publisher;
  let app: FastifyInstance;

  before(async () => {
    tracing = await startTracing({
      serviceName: 'sitemail-notifications',
      env: {},
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    db = await notificationsDb('tracing');
    smtp = await startSmtpServer({});
    bus = inProcessBus();
    publisher = await bus.publisher();
    const site = siteFor(smtp);
    const admin = new Stream();
    await handleEvent(
      db,
      admin.created({ email: 'root@example.com', verified: true, siteAdmin: true }),
      site,
      new Date(),
    );
    await handleEvent(db, admin.apiKeyCreated('admin key', apiKeySecretSha256(ADMIN_KEY)), site, new Date());
    app = Fastify({ logger: false });
    await app.register(notificationsApp, {
      db,
      bus,
      siteConfig: () => site,
      linkTokenKeys: testLinkKey,
      worker: { pollIntervalMs: 50, poolSize: 1 },
    });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await publisher?.close();
    await bus?.close();
    await smtp?.close();
    await db?.close();
    await tracing?.shutdown();
  });
  beforeEach(() => exporter.reset());

  const publish = (events: FleetEvent[], traceparent?: string) =>
    publisher.publish(
      topics.accountsEvents,
      events.map((e) => {
        const m = toWireMessage(e);
        return traceparent ? { ...m, headers: { ...m.headers, traceparent } } : m;
      }),
    );
  const mailTo = (address: string) =>
    eventually(
      async () => smtp.received.find((m) => m.envelope.to.includes(address)),
      20_000,
      `email to ${address}`,
    );
  const spansOf = async (traceId: string, atLeast: number) =>
    eventually(async () => {
      await tracing.forceFlush();
      const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      return spans.length >= atLeast ? spans : undefined;
    });
  const named = (spans: ReadableSpan[], prefix: string) => {
    const found = spans.filter((s) => s.name.startsWith(prefix));
    assert.equal(found.length, 1, `one "${prefix}…" span among ${spans.map((s) => s.name).join(', ')}`);
    return found[0]!;
  };
  const noAddresses = (spans: ReadableSpan[], secrets: string[]) => {
    const text = JSON.stringify(spans.map((s) => [s.name, s.attributes, s.events, s.status]));
    for (const secret of secrets) assert.ok(!text.includes(secret), `a span carries ${secret}`);
  };

  it('continues the message’s traceparent: handle event → deliver → SMTP send, and the email names the trace', async () => {
    const user = new Stream();
    const email = 'traced.erin@example.com';
    await publish(
      [user.created({ email, verified: false, username: 'erin' }), verification(user, email, 'tok-erin-1')],
      `00-${PRODUCER_TRACE}-${PRODUCER_SPAN}-01`,
    );
    const mail = await mailTo(email);
    assert.equal(traceHeader(mail.headers), PRODUCER_TRACE);

    const spans = await spansOf(PRODUCER_TRACE, 4);
    const handled = spans.filter((s) => s.name.startsWith('handle '));
    assert.deepEqual(handled.map((s) => s.name).sort(), [
      'handle EmailVerificationRequested',
      'handle UserCreated',
    ]);
    assert.ok(
      handled.every((s) => s.parentSpanContext?.spanId === PRODUCER_SPAN && s.kind === SpanKind.CONSUMER),
    );
    const decided = named(spans, 'handle EmailVerificationRequested');
    assert.deepEqual(decided.attributes['sitemail.decisions'], ['send email-verification']);
    assert.equal(decided.attributes['sitemail.deliveries.queued'], 1);
    const deliver = named(spans, 'deliver email-verification');
    assert.equal(
      deliver.parentSpanContext?.spanId,
      decided.spanContext().spanId,
      'from the row’s traceparent',
    );
    assert.equal(deliver.attributes['sitemail.delivery.outcome'], 'sent');
    const send = named(spans, 'smtp send');
    assert.equal(send.parentSpanContext?.spanId, deliver.spanContext().spanId);
    assert.equal(send.kind, SpanKind.CLIENT);
    assert.equal(send.attributes['smtp.response.code'], 250);
    assert.equal(decided.resource.attributes['service.name'], 'sitemail-notifications');

    const { rows } = await db.query<{ traceparent: string }>(
      'SELECT traceparent FROM deliveries WHERE user_id = $1',
      [user.userId],
    );
    assert.deepEqual(
      rows.map((r) => r.traceparent),
      [`00-${PRODUCER_TRACE}-${decided.spanContext().spanId}-01`],
    );
    noAddresses(spans, [email, 'traced.erin', 'tok-erin-1']);
  });

  it('a message without traceparent (a fleet producer may omit it) is delivered in a trace of its own', async () => {
    const user = new Stream();
    const email = 'plain.frank@example.com';
    await publish([
      user.created({ email, verified: false, username: 'frank' }),
      verification(user, email, 'tok-frank-1'),
    ]);
    const mail = await mailTo(email);
    const traceId = traceHeader(mail.headers);
    assert.match(String(traceId), /^[0-9a-f]{32}$/);
    assert.notEqual(traceId, PRODUCER_TRACE);
    const spans = await spansOf(String(traceId), 3);
    const decided = named(spans, 'handle EmailVerificationRequested');
    assert.equal(decided.parentSpanContext, undefined, 'a root span');
    named(spans, 'deliver email-verification');
    named(spans, 'smtp send');
    noAddresses(spans, [email]);
  });

  it('a test email carries the trace id of its POST /test-email request', async () => {
    const traceId = 'a3ce929d0e0e47364bf92f3577b34da6';
    const res = await app.inject({
      method: 'POST',
      url: '/test-email',
      headers: { authorization: `token ${ADMIN_KEY}`, traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      payload: { to: 'admin.check@example.com' },
    });
    assert.equal(res.statusCode, 200, res.body);
    const mail = await mailTo('admin.check@example.com');
    assert.match(mail.subject ?? '', /^TEST: email sent from/);
    assert.equal(traceHeader(mail.headers), traceId);
    const spans = await spansOf(traceId, 2);
    const request = named(spans, 'POST /test-email');
    const send = named(spans, 'smtp send');
    assert.equal(send.parentSpanContext?.spanId, request.spanContext().spanId);
    noAddresses(spans, ['admin.check@example.com', ADMIN_KEY]);
  });
});
