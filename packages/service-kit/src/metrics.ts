import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import Type from 'typebox';

// Re-exported: the services define their series with these and depend on prom-client only through the kit.
export { Counter, Gauge, Histogram, Registry } from 'prom-client';

declare module 'fastify' {
  interface FastifyInstance {
    /** The app's own metrics registry (`GET /metrics` serves it); the service's metrics modules register in it. */
    metricsRegistry: Registry;
  }
}

/**
 * A registry of one app: never prom-client's global one, since tests build many apps in one
 * process and a second app would find every name taken. With `defaultMetrics` (default true) it
 * carries prom-client's process metrics (CPU, memory, event-loop lag, GC, handles).
 */
export function createMetricsRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * A gauge whose value is read at scrape time (a count from the database, say), time-boxed so a
 * hung database makes `/metrics` answer without it rather than hang: a failed or late read keeps
 * the last value and counts in `metrics_collect_errors_total{metric}`. `read` answers the value,
 * or one value per label set.
 */
export function scrapeTimeGauge<L extends string>(opts: {
  registry: Registry;
  name: string;
  help: string;
  labelNames?: readonly L[];
  read: () => Promise<number | { labels: Record<L, string>; value: number }[]>;
  timeoutMs?: number;
}): Gauge<L> {
  const reads = readsInFlight(opts.registry);
  const errors = collectErrorsCounter(opts.registry);
  const timeoutMs = opts.timeoutMs ?? 1000;
  async function collect(gauge: Gauge<L>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        opts.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('late')), timeoutMs);
        }),
      ]);
      if (typeof value === 'number') gauge.set(value);
      else {
        // Label sets that went away (no delivery in that status any more) are dropped, not kept at their last count.
        gauge.reset();
        for (const { labels, value: v } of value) gauge.set(labels, v);
      }
    } catch {
      errors.inc({ metric: opts.name });
    } finally {
      clearTimeout(timer);
    }
  }
  return new Gauge<L>({
    name: opts.name,
    help: opts.help,
    labelNames: opts.labelNames ?? [],
    registers: [opts.registry],
    collect() {
      const read = collect(this);
      reads.add(read);
      return read.finally(() => reads.delete(read));
    },
  });
}

const inFlight = new WeakMap<Registry, Set<Promise<void>>>();
function readsInFlight(registry: Registry): Set<Promise<void>> {
  const set = inFlight.get(registry) ?? new Set<Promise<void>>();
  inFlight.set(registry, set);
  return set;
}

function collectErrorsCounter(registry: Registry): Counter<'metric'> {
  const name = 'metrics_collect_errors_total';
  const existing = registry.getSingleMetric(name) as Counter<'metric'> | undefined;
  if (existing) return existing;
  const reads = readsInFlight(registry);
  return new Counter({
    name,
    help: 'Scrape-time reads (database counts) that failed or took too long; their gauges kept the last value',
    labelNames: ['metric'],
    registers: [registry],
    // A scrape starts every metric's collect at once: wait for this scrape's reads, so a failure
    // is counted in the same answer that shows the stale value.
    async collect() {
      await null;
      await Promise.allSettled([...reads]);
    },
  });
}

export interface MetricsOptions {
  /** The app's registry, with the service's own metrics in it. Default: a new one with the process metrics. */
  registry?: Registry;
  /** Histogram buckets of `http_request_duration_seconds` (seconds). */
  buckets?: number[];
}

/** The route a request matched, as its pattern (`/users/:id`): never the raw URL, which carries ids and link codes. */
export function routeLabel(request: { routeOptions: { url?: string | undefined } }): string {
  return request.routeOptions.url ?? 'unmatched';
}

/**
 * `GET /metrics` in Prometheus's text format, and `http_request_duration_seconds{method,route,
 * status_code}` for every answer. Unauthenticated like `/healthz` (see README "Metrics"): no
 * metric name or label carries an address, a user id, a token or a secret, only bounded values.
 */
export const metricsPlugin = fp(
  async (app: FastifyInstance, opts: MetricsOptions) => {
    const registry = opts.registry ?? createMetricsRegistry();
    app.decorate('metricsRegistry', registry);
    const duration = new Histogram({
      name: 'http_request_duration_seconds',
      help: 'Time from request received to response sent, by route pattern and status',
      labelNames: ['method', 'route', 'status_code'],
      buckets: opts.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    app.addHook('onResponse', async (request, reply) => {
      duration.observe(
        { method: request.method, route: routeLabel(request), status_code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    app.get(
      '/metrics',
      {
        logLevel: 'warn',
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text exposition format)',
          description:
            'Process, HTTP and pipeline metrics of this instance. Unauthenticated like /healthz: names and labels never carry an address, a user id or a secret.',
          response: {
            200: {
              description: 'The metrics, Prometheus text format 0.0.4',
              content: { 'text/plain': { schema: Type.String() } },
            },
          },
        },
      },
      async (_request, reply) => {
        const text = await registry.metrics();
        return reply.type(registry.contentType).send(text);
      },
    );
  },
  { name: 'service-kit-metrics', fastify: '5.x' },
);
