/**
 * The process's OpenTelemetry tracer provider. Always registered, so every request, command, event
 * and email has a trace id even when nothing is exported (the email's `X-Sitemail-Trace-Id` header
 * and the W3C `traceparent` in the outbox and on Kafka rely on it); spans leave the process only
 * when the standard `OTEL_*` variables ask for it. The OTLP exporter (protobufjs and the OTLP
 * transformer, ~130 ms and ~15 MB to load) is imported only then: start time and memory are
 * measured targets of the production build.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  defaultResource,
  detectResources,
  envDetector,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NodeTracerProvider,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { EnvError } from './env.ts';
import type { Logger } from './logger.ts';

/** Where spans go: an OTLP/HTTP (JSON) collector, stdout, or nowhere (the default). */
export type TracesExporterKind = 'otlp' | 'console' | 'none';

export interface TracesExportSettings {
  exporter: TracesExporterKind;
  serviceName: string;
}

const truthy = (v: string | undefined) => v !== undefined && v.trim() !== '';

/**
 * Reads the standard variables (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/):
 * `OTEL_TRACES_EXPORTER` `otlp` | `console` | `none`; unset, an `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` means `otlp`, nothing means `none` (the spec's default is
 * otlp; here export is opt-in, so a service never retries against a collector nobody runs).
 * `OTEL_SDK_DISABLED=true` exports nothing; trace ids are still made. `OTEL_SERVICE_NAME`
 * overrides the service's default name.
 */
export function tracesExportSettings(
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): TracesExportSettings {
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || defaultServiceName;
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { exporter: 'none', serviceName };
  const named = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (named) {
    // The spec allows a list; one exporter is what this product supports.
    if (named === 'otlp' || named === 'console' || named === 'none') return { exporter: named, serviceName };
    throw new EnvError([
      `OTEL_TRACES_EXPORTER must be one of otlp, console, none, not ${JSON.stringify(env.OTEL_TRACES_EXPORTER)}`,
    ]);
  }
  const endpoint = truthy(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) || truthy(env.OTEL_EXPORTER_OTLP_ENDPOINT);
  return { exporter: endpoint ? 'otlp' : 'none', serviceName };
}

export interface TracingOptions {
  /** The service's name when `OTEL_SERVICE_NAME` is unset (`sitemail-accounts`, `sitemail-notifications`). */
  serviceName: string;
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Processors beside the exporter's: tests pass a SimpleSpanProcessor over an InMemorySpanExporter. */
  spanProcessors?: SpanProcessor[];
  /** Told (info) where spans go once, at start; never an endpoint's credentials. */
  logger?: Pick<Logger, 'info'>;
}

export interface Tracing {
  readonly serviceName: string;
  readonly exporter: TracesExporterKind;
  /** Exports every ended span now (tests, and before a planned exit). */
  forceFlush(): Promise<void>;
  /** Flushes and stops exporting; the process's last part to close. */
  shutdown(): Promise<void>;
}

let started: Tracing | undefined;

/**
 * Registers the process's tracer provider (AsyncLocalStorage context, W3C trace-context
 * propagation) and, when the environment asks, a batching OTLP/HTTP exporter. Call it once per
 * process, before the services start; a second call is an error, since the first provider stays
 * the global one. The exporter reads its own variables (`OTEL_EXPORTER_OTLP_*` endpoint, headers,
 * timeout; `OTEL_BSP_*` batching); `OTEL_TRACES_SAMPLER` is honoured by the provider.
 */
export async function startTracing(opts: TracingOptions): Promise<Tracing> {
  if (started) {
    throw new Error(`tracing already started in this process (service ${started.serviceName})`);
  }
  const settings = tracesExportSettings(opts.env ?? process.env, opts.serviceName);
  const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  const exporter = await exporterFor(settings.exporter);
  if (exporter) processors.push(new BatchSpanProcessor(exporter));
  const provider = new NodeTracerProvider({
    // OTEL_RESOURCE_ATTRIBUTES (deployment.environment=…, say) from the process's environment;
    // the service name as read above wins over a service.name among them.
    resource: defaultResource()
      .merge(detectResources({ detectors: [envDetector] }))
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName })),
    spanProcessors: processors,
  });
  // Only trace context: baggage is not read from callers (nothing here uses it, and it would
  // otherwise travel on to Kafka and fleet services unchecked).
  provider.register({ propagator: new W3CTraceContextPropagator() });
  opts.logger?.info(
    { serviceName: settings.serviceName, tracesExporter: settings.exporter },
    settings.exporter === 'none'
      ? 'tracing: trace ids only, no export'
      : `tracing: exporting spans (${settings.exporter})`,
  );
  let stopped: Promise<void> | undefined;
  const tracing: Tracing = {
    serviceName: settings.serviceName,
    exporter: settings.exporter,
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      stopped ??= provider.shutdown().finally(() => {
        trace.disable();
        context.disable();
        propagation.disable();
        started = undefined;
      });
      return stopped;
    },
  };
  started = tracing;
  return tracing;
}

async function exporterFor(kind: TracesExporterKind): Promise<SpanExporter | undefined> {
  if (kind === 'console') return new ConsoleSpanExporter();
  if (kind !== 'otlp') return undefined;
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  return new OTLPTraceExporter();
}
