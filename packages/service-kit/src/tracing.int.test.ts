/**
 * The tracer provider with an in-memory exporter (one per process: this file's), and the HTTP
 * span plugin over a real listening server, so the context is proven to survive body parsing.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { context, SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import Fastify, { type FastifyInstance } from 'fastify';
import { serverOptions } from './server.ts';
import { startTracing, type Tracing } from './tracing.ts';
import { contextOfTraceparent, httpTracingPlugin, traceIdOf, traceparentOf } from './tracing-http.ts';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let app: FastifyInstance;
let url: string;

const CALLER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const callerTraceparent = `00-${CALLER_TRACE}-${CALLER_SPAN}-01`;

before(async () => {
  tracing = await startTracing({
    serviceName: 'kit-test',
    env: {},
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  app = Fastify(serverOptions({ logger: false }));
  await app.register(httpTracingPlugin);
  // What a route's use case would do: work in a child span, and read the context to store it.
  app.post('/links/:code', async (request) => {
    const seen = await trace.getTracer('test').startActiveSpan('use case', async (span) => {
      await new Promise((r) => setTimeout(r, 5));
      span.end();
      return { traceparent: traceparentOf(), traceId: traceIdOf() };
    });
    return { ...seen, body: request.body };
  });
  app.get('/boom', async () => {
    throw new Error('internal');
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});

after(async () => {
  await app?.close();
  await tracing?.shutdown();
});

beforeEach(() => exporter.reset());

const post = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ password: 'hunter2-secret' }),
  });

const finished = async (n: number) => {
  await tracing.forceFlush();
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.length, n, `spans: ${spans.map((s) => s.name).join(', ')}`);
  return spans;
};

describe('startTracing', () => {
  it('registers the provider once: a second call is an error naming the first service', async () => {
    await assert.rejects(startTracing({ serviceName: 'again', env: {} }), /already started.*kit-test/);
  });

  it('names the service in the resource, and exports nothing by default', () => {
    assert.equal(tracing.exporter, 'none');
    assert.equal(tracing.serviceName, 'kit-test');
  });
});

describe('httpTracingPlugin', () => {
  it('continues the caller’s traceparent: one SERVER span named by the route template, the handler’s work inside it', async () => {
    const res = await post('/links/secret-link-code?token=abc', { traceparent: callerTraceparent });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { traceparent: string; traceId: string };
    assert.equal(body.traceId, CALLER_TRACE, 'the handler runs in the request’s trace, after body parsing');

    const [useCase, server] = await finished(2);
    assert.equal(server?.name, 'POST /links/:code');
    assert.equal(server?.kind, SpanKind.SERVER);
    assert.equal(server?.spanContext().traceId, CALLER_TRACE);
    assert.equal(server?.parentSpanContext?.spanId, CALLER_SPAN);
    assert.equal(server?.attributes['http.route'], '/links/:code');
    assert.equal(server?.attributes['http.request.method'], 'POST');
    assert.equal(server?.attributes['http.response.status_code'], 200);
    assert.equal(useCase?.parentSpanContext?.spanId, server?.spanContext().spanId);
    // The traceparent a use case stores names its own span in the caller's trace.
    assert.equal(body.traceparent, `00-${CALLER_TRACE}-${useCase?.spanContext().spanId}-01`);

    // The URL's codes and the body's password are nowhere in the span.
    const everything = JSON.stringify([server?.attributes, server?.name, useCase?.attributes]);
    for (const secret of ['secret-link-code', 'abc', 'hunter2-secret']) {
      assert.ok(!everything.includes(secret), `span carries ${secret}`);
    }
    assert.equal(res.headers.get('traceresponse'), `00-${CALLER_TRACE}-${server?.spanContext().spanId}-01`);
  });

  it('without a traceparent, each request starts its own trace and the response names it', async () => {
    const [a, b] = [await post('/links/x'), await post('/links/y')];
    const ids = [a, b].map(
      (r) => /^00-([0-9a-f]{32})-[0-9a-f]{16}-01$/.exec(r.headers.get('traceresponse') ?? '')?.[1],
    );
    assert.ok(ids[0] && ids[1], 'traceresponse headers');
    assert.notEqual(ids[0], ids[1]);
    assert.notEqual(ids[0], CALLER_TRACE);
    const spans = await finished(4);
    const servers = spans.filter((s) => s.kind === SpanKind.SERVER);
    assert.deepEqual(
      servers.map((s) => s.spanContext().traceId),
      ids,
    );
    assert.ok(
      servers.every((s) => s.parentSpanContext === undefined),
      'root spans',
    );
  });

  it('a malformed traceparent is ignored (a new trace), not an error', async () => {
    const res = await post('/links/z', { traceparent: '00-not-a-trace-01' });
    assert.equal(res.status, 200);
    const [, server] = await finished(2);
    assert.equal(server?.parentSpanContext, undefined);
  });

  it('a 5xx marks the span as an error; a 404 is named by the method only', async () => {
    assert.equal((await fetch(`${url}/boom`)).status, 500);
    assert.equal((await fetch(`${url}/nowhere/secret-path`)).status, 404);
    const [boom, missing] = await finished(2);
    assert.equal(boom?.name, 'GET /boom');
    assert.equal(boom?.status.code, 2 /* ERROR */);
    assert.equal(missing?.name, 'GET');
    assert.equal(missing?.attributes['http.response.status_code'], 404);
    assert.notEqual(missing?.status.code, 2);
    assert.ok(!JSON.stringify(missing?.attributes).includes('secret-path'));
  });
});

describe('traceparent helpers', () => {
  it('contextOfTraceparent continues a stored traceparent; absent or garbage is the root context', () => {
    const ctx = contextOfTraceparent(callerTraceparent);
    assert.equal(traceIdOf(ctx), CALLER_TRACE);
    assert.equal(traceparentOf(ctx), callerTraceparent);
    for (const none of [undefined, null, '', 'garbage']) {
      assert.equal(traceIdOf(contextOfTraceparent(none)), undefined, String(none));
      assert.equal(traceparentOf(contextOfTraceparent(none)), undefined);
    }
    assert.equal(traceparentOf(context.active()), undefined, 'no span active here');
  });
});
