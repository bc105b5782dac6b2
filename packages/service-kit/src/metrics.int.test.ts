import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { docsPlugin } from './docs.ts';
import { createMetricsRegistry, metricsPlugin, scrapeTimeGauge } from './metrics.ts';
import { metricValue, parseMetrics } from './metrics-text.ts';

async function build(read?: () => Promise<number>): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  const registry = createMetricsRegistry();
  if (read) scrapeTimeGauge({ registry, name: 'things_waiting', help: 'Things', read, timeoutMs: 100 });
  await app.register(docsPlugin, { title: 'kit test', version: '1.0.0', description: 'A test service' });
  await app.register(metricsPlugin, { registry });
  app.get('/users/:id', async () => ({ ok: true }));
  await app.ready();
  return app;
}

const scrape = async (app: FastifyInstance) => {
  const r = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(r.statusCode, 200, r.body);
  return { samples: parseMetrics(r.body), body: r.body, type: r.headers['content-type'] };
};

describe('metricsPlugin', () => {
  it('serves each app its own registry: process metrics and request durations by route pattern, never the URL', async () => {
    // Two apps in one process: with prom-client's global registry the second would find every name taken.
    const [a, b] = [await build(), await build()];
    try {
      await a.inject({ method: 'GET', url: '/users/1f0c8a3e-secret-id' });
      await a.inject({ method: 'GET', url: '/users/other-id' });
      await a.inject({ method: 'GET', url: '/no/such/route?code=abc' });
      const { samples, body, type } = await scrape(a);
      assert.match(String(type), /^text\/plain; version=0\.0\.4/);
      assert.ok(metricValue(samples, 'process_resident_memory_bytes') > 0, 'default process metrics');
      const count = (labels: Record<string, string>) =>
        metricValue(samples, 'http_request_duration_seconds_count', labels);
      assert.equal(count({ method: 'GET', route: '/users/:id', status_code: '200' }), 2);
      assert.equal(count({ route: 'unmatched', status_code: '404' }), 1);
      assert.doesNotMatch(body, /secret-id|other-id|code=abc|no\/such/);
      // The other app saw none of those requests.
      const other = await scrape(b);
      assert.equal(
        metricValue(other.samples, 'http_request_duration_seconds_count', { route: '/users/:id' }),
        0,
      );
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('is documented in OpenAPI under operations, as Prometheus text', async () => {
    const app = await build();
    try {
      const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
      const op = doc.paths['/metrics'].get;
      assert.deepEqual(op.tags, ['operations']);
      assert.ok(op.responses['200'].content['text/plain'], JSON.stringify(op.responses));
    } finally {
      await app.close();
    }
  });

  it('reads a scrape-time gauge at each scrape; a failed or hung read keeps the last value and is counted', async () => {
    let next: () => Promise<number> = async () => 7;
    const app = await build(() => next());
    try {
      assert.equal(metricValue((await scrape(app)).samples, 'things_waiting'), 7);
      next = async () => 3;
      assert.equal(metricValue((await scrape(app)).samples, 'things_waiting'), 3);
      next = async () => {
        throw new Error('the database does not answer');
      };
      let { samples } = await scrape(app);
      assert.equal(metricValue(samples, 'things_waiting'), 3);
      assert.equal(metricValue(samples, 'metrics_collect_errors_total', { metric: 'things_waiting' }), 1);
      next = () => new Promise(() => {});
      const started = Date.now();
      ({ samples } = await scrape(app));
      assert.ok(Date.now() - started < 2000, 'a hung read does not hang /metrics');
      assert.equal(metricValue(samples, 'things_waiting'), 3);
      assert.equal(metricValue(samples, 'metrics_collect_errors_total', { metric: 'things_waiting' }), 2);
    } finally {
      await app.close();
    }
  });
});
