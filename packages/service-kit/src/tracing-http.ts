/**
 * Trace context at the services' edges: a span per HTTP request (continuing a caller's W3C
 * `traceparent`), and the helpers that carry a context through rows and message headers as one
 * `traceparent` string. Only `@opentelemetry/api`: without a registered provider (`startTracing`)
 * every span is a no-op and no trace id exists.
 */
import {
  type Context,
  context,
  isSpanContextValid,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';

/** The W3C `traceparent` of `ctx` (default: the active context), or undefined when it has no valid span. */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  if (!sc || !isSpanContextValid(sc)) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return carrier.traceparent;
}

/**
 * The context a stored or received `traceparent` names, to continue its trace; the root context
 * (a new trace) when it is absent or malformed (a fleet producer may send none, or garbage).
 */
export function contextOfTraceparent(traceparent: string | null | undefined): Context {
  if (typeof traceparent !== 'string' || traceparent.length === 0) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** The 32-hex trace id of `ctx` (default: the active context), or undefined when there is none. */
export function traceIdOf(ctx: Context = context.active()): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && isSpanContextValid(sc) ? sc.traceId : undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's span and the context holding it (httpTracingPlugin). */
    tracing?: { span: Span; context: Context };
  }
}

export interface HttpTracingOptions {
  /** The tracer's name; default `sitemail-http`. */
  tracerName?: string;
}

/**
 * A SERVER span per request, a child of the caller's `traceparent` when it sends one. Named
 * `METHOD route` after the route's template, never the URL: link paths and query strings carry
 * tokens. The span is made the active context again before the handler (body parsing runs in the
 * socket's async context, not the hook's), so commands, events and emails the handler causes join
 * the request's trace. The response carries `traceresponse` (W3C Trace Context level 2), so a
 * caller who sent no `traceparent` still learns the trace id to look for in an email's
 * `X-Sitemail-Trace-Id` header.
 */
export const httpTracingPlugin = fp(
  async (app: FastifyInstance, opts: HttpTracingOptions) => {
    const tracer = trace.getTracer(opts.tracerName ?? 'sitemail-http');
    app.decorateRequest('tracing', undefined);

    app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
      const parent = propagation.extract(ROOT_CONTEXT, request.headers);
      const route = request.routeOptions.url;
      const span = tracer.startSpan(
        route ? `${request.method} ${route}` : request.method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': request.method,
            ...(route ? { 'http.route': route } : {}),
            'sitemail.request_id': String(request.id),
          },
        },
        parent,
      );
      const ctx = trace.setSpan(parent, span);
      request.tracing = { span, context: ctx };
      const sc = span.spanContext();
      if (isSpanContextValid(sc)) {
        reply.header('traceresponse', `00-${sc.traceId}-${sc.spanId}-0${sc.traceFlags & 1}`);
      }
      context.with(ctx, done);
    });

    app.addHook('preHandler', (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      if (request.tracing) context.with(request.tracing.context, done);
      else done();
    });

    app.addHook('onResponse', async (request: FastifyRequest, reply: FastifyReply) => {
      const span = request.tracing?.span;
      if (!span?.isRecording()) return;
      span.setAttribute('http.response.status_code', reply.statusCode);
      // Per the HTTP semantic conventions a server span is an error for 5xx only: a 4xx is the caller's.
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });

    // A connection closed before the answer: end the span so it is exported, marked as such.
    app.addHook('onRequestAbort', async (request: FastifyRequest) => {
      const span = request.tracing?.span;
      if (!span?.isRecording()) return;
      span.setAttribute('sitemail.aborted', true);
      span.end();
    });
  },
  { name: 'sitemail-http-tracing' },
);
