/**
 * The standard variables switch on the real OTLP/HTTP exporter: spans reach a collector (a real
 * HTTP server standing in for one, decoding the OTLP JSON it is sent) under OTEL_SERVICE_NAME,
 * and shutdown flushes what was batched. A file of its own: one tracer provider per process.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, it } from 'node:test';
import { trace } from '@opentelemetry/api';
import { startTracing, type Tracing } from './tracing.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: {
    resourceSpans: {
      resource: { attributes: { key: string; value: { stringValue?: string } }[] };
      scopeSpans: { spans: { name: string; traceId: string }[] }[];
    }[];
  };
}
const received: Received[] = [];
const collector = createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => {
    raw += chunk;
  });
  req.on('end', () => {
    received.push({ path: req.url ?? '', headers: req.headers, body: JSON.parse(raw) });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
let tracing: Tracing;

before(async () => {
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const { port } = collector.address() as AddressInfo;
  // The exporter reads its own variables from the process's environment, as in production.
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
  process.env.OTEL_EXPORTER_OTLP_HEADERS = 'x-collector-key=k-123';
  process.env.OTEL_SERVICE_NAME = 'accounts-under-test';
  process.env.OTEL_RESOURCE_ATTRIBUTES = 'deployment.environment.name=staging';
  tracing = await startTracing({ serviceName: 'sitemail-accounts' });
});

after(() => new Promise<void>((resolve) => collector.close(() => resolve())));

it('OTEL_EXPORTER_OTLP_ENDPOINT sends batched spans to the collector; shutdown flushes them', async () => {
  assert.equal(tracing.exporter, 'otlp');
  assert.equal(tracing.serviceName, 'accounts-under-test');
  const tracer = trace.getTracer('test');
  const traceId = tracer.startActiveSpan('outer', (outer) => {
    tracer.startSpan('inner').end();
    outer.end();
    return outer.spanContext().traceId;
  });
  assert.equal(received.length, 0, 'batched, not sent span by span');
  await tracing.shutdown();

  assert.ok(received.length >= 1, 'the collector got an export');
  const first = received[0]!;
  assert.equal(first.path, '/v1/traces');
  assert.equal(first.headers['x-collector-key'], 'k-123');
  const resource = first.body.resourceSpans[0]!;
  const serviceName = resource.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
  assert.equal(serviceName, 'accounts-under-test');
  const environment = resource.resource.attributes.find((a) => a.key === 'deployment.environment.name');
  assert.equal(environment?.value.stringValue, 'staging', 'OTEL_RESOURCE_ATTRIBUTES');
  const spans = received.flatMap((r) =>
    r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((s) => s.spans)),
  );
  assert.deepEqual(spans.map((s) => s.name).sort(), ['inner', 'outer']);
  // OTLP/JSON carries ids as hex.
  assert.ok(spans.every((s) => s.traceId === traceId));
});
