/**
 * Traces in accounts, recorded by an in-memory exporter behind the service kit's provider (one per
 * process: this file's): a SERVER span per request continuing the caller's `traceparent`, a span
 * per command inside it, the command's context in the outbox row and in the message the relay
 * publishes. No span attribute carries an address, a password, a token or an API key.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { type Bus, type BusMessage, inProcessBus } from '@sitemail/bus';
import { generateLinkTokenKey, parseLinkTokenKey, topics } from '@sitemail/contracts';
import { startTracing, type Tracing } from '@sitemail/service-kit';
import { staticSiteConfig } from '@sitemail/site-config';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import { type RunningAccounts, startAccounts } from './main.ts';
import { PASSWORD, smtpSite } from './testing/harness.ts';

const exporter = new InMemorySpanExporter();
const CALLER_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const generous = { max: 10_000, timeWindow: '1 minute' };

describe(`accounts traces (${testDatabaseKind()})`, () => {
  let tracing: Tracing;
  let db: TestDatabase;
  let bus: Bus;
  let accounts: RunningAccounts;
  const published: BusMessage[] = [];

  before(async () => {
    tracing = await startTracing({
      serviceName: 'sitemail-accounts',
      env: {},
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    db = await testDatabase('accounts_tracing');
    bus = inProcessBus();
    accounts = await startAccounts({
      port: 0,
      db,
      bus,
      siteConfig: staticSiteConfig(smtpSite),
      linkTokenKey: parseLinkTokenKey(generateLinkTokenKey('tracing-test')),
      passwordCost: { N: 1024, r: 8, p: 1 },
      rateLimits: { signUp: generous, login: generous, emailRequests: generous },
    });
    const consumer = bus.consumer<BusMessage>({
      groupId: 'tracing-test',
      topics: [topics.accountsEvents],
      fromBeginning: true,
      deadLetterTopic: topics.notificationsDeadLetter,
      decode: (m) => m,
      handleBatch: async (batch) => {
        published.push(...batch.map((b) => b.value));
      },
    });
    void consumer.start();
  });
  after(async () => {
    await accounts?.close();
    await bus?.close();
    await db?.close();
    await tracing?.shutdown();
  });
  beforeEach(() => exporter.reset());

  const signUp = (username: string, email: string, headers: Record<string, string> = {}) =>
    fetch(`${accounts.url}/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ username, email, password: PASSWORD }),
    });
  const spans = async () => {
    await tracing.forceFlush();
    return exporter.getFinishedSpans();
  };
  const named = (all: ReadableSpan[], name: string) => {
    const found = all.filter((s) => s.name === name);
    assert.equal(found.length, 1, `one span "${name}" among ${all.map((s) => s.name).join(', ')}`);
    return found[0]!;
  };
  const noSecrets = (all: ReadableSpan[], secrets: string[]) => {
    const text = JSON.stringify(all.map((s) => [s.name, s.attributes, s.events, s.status]));
    for (const secret of secrets) assert.ok(!text.includes(secret), `a span carries ${secret}`);
  };

  it('a sign-up: the request continues the caller’s trace, the command is its child, the outbox and the message carry the command’s traceparent', async () => {
    const email = 'traced.alice@example.com';
    const res = await signUp('traced-alice', email, { traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-01` });
    assert.equal(res.status, 201);
    const user = (await res.json()) as { id: string };

    const all = await spans();
    const request = named(all, 'POST /sign-up');
    const command = named(all, 'command CreateUser');
    assert.equal(request.kind, SpanKind.SERVER);
    assert.equal(request.spanContext().traceId, CALLER_TRACE);
    assert.equal(request.parentSpanContext?.spanId, CALLER_SPAN);
    assert.equal(request.attributes['http.response.status_code'], 201);
    assert.equal(request.resource.attributes['service.name'], 'sitemail-accounts');
    assert.equal(command.parentSpanContext?.spanId, request.spanContext().spanId);
    assert.equal(command.attributes['sitemail.command.type'], 'CreateUser');
    assert.equal(command.attributes['sitemail.stream_id'], user.id);
    assert.equal(
      command.attributes['sitemail.command.events'],
      2,
      'UserCreated and the verification request',
    );
    assert.equal(res.headers.get('traceresponse'), `00-${CALLER_TRACE}-${request.spanContext().spanId}-01`);

    const expected = `00-${CALLER_TRACE}-${command.spanContext().spanId}-01`;
    const rows = await db.query<{ traceparent: string | null }>(
      'SELECT traceparent FROM events WHERE stream_id = $1',
      [user.id],
    );
    assert.deepEqual(
      rows.rows.map((r) => r.traceparent),
      [expected, expected],
      'the outbox rows',
    );
    // Up to 30 s: the relay's first claim and the group join can be slow on a loaded machine.
    for (let i = 0; i < 600 && !published.some((m) => m.key === user.id); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const message = published.find((m) => m.key === user.id);
    assert.equal(message?.headers.traceparent, expected, 'the published message’s header');
    noSecrets(all, [email, PASSWORD, 'traced.alice']);
  });

  it('a request that creates an API key: no span carries the key, the password or the Basic credentials', async () => {
    const carol = (await (await signUp('carol', 'carol@example.com')).json()) as { id: string };
    exporter.reset();
    const basic = `Basic ${Buffer.from(`carol:${PASSWORD}`).toString('base64')}`;
    const res = await fetch(`${accounts.url}/users/${carol.id}/api-keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: basic },
      body: JSON.stringify({ name: 'ci' }),
    });
    const body = (await res.json()) as { secret?: string };
    const all = await spans();
    const secret = body.secret;
    assert.equal(res.status, 201, JSON.stringify(body));
    assert.ok(secret);
    named(all, 'POST /users/:userId/api-keys');
    named(all, 'command CreateApiKey');
    noSecrets(all, [secret, PASSWORD, basic.slice(6), 'carol@example.com']);
  });

  it('a refused command is a span with the refusal code, not an error; a request without traceparent starts its own trace', async () => {
    const dave = (await (await signUp('dave', 'dave@example.com')).json()) as { id: string };
    const basic = `Basic ${Buffer.from(`dave:${PASSWORD}`).toString('base64')}`;
    const createKey = (auth: string) =>
      fetch(`${accounts.url}/users/${dave.id}/api-keys`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: auth },
        body: JSON.stringify({ name: 'laptop' }),
      });
    const first = (await (await createKey(basic)).json()) as { secret: string };
    exporter.reset();
    const res = await createKey(`token ${first.secret}`);
    assert.equal(res.status, 409);
    const problem = (await res.json()) as { code: string };
    assert.equal(problem.code, 'api-key-name-taken');
    const all = await spans();
    const request = named(all, 'POST /users/:userId/api-keys');
    const command = named(all, 'command CreateApiKey');
    assert.equal(request.parentSpanContext, undefined, 'a root span');
    assert.notEqual(request.spanContext().traceId, CALLER_TRACE);
    assert.equal(command.spanContext().traceId, request.spanContext().traceId);
    assert.equal(command.attributes['sitemail.command.refusal'], 'api-key-name-taken');
    assert.notEqual(command.status.code, 2 /* ERROR */);
    assert.equal(request.attributes['http.response.status_code'], 409);
    noSecrets(all, [first.secret, PASSWORD, 'dave@example.com']);
  });
});
