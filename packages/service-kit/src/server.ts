import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import type { FastifyBaseLogger, FastifyInstance, FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { TrustProxy } from './env.ts';

/** The body limit of both services: their bodies are small JSON documents. */
export const defaultBodyLimit = 64 * 1024;

const safeRequestId = /^[A-Za-z0-9._:-]{1,128}$/;

/** A caller's (or proxy's) `x-request-id` is kept when it is a plain token, so logs join up across hops; else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && safeRequestId.test(given) ? given : randomUUID();
}

type Serialize = (doc: unknown) => string;
type SerializerFactory = (externalSchemas: unknown, options: unknown) => (route: unknown) => Serialize;

/**
 * Fastify's own response serializers (fast-json-stringify through its
 * @fastify/fast-json-stringify-compiler, resolved from Fastify as Fastify resolves it, with the
 * same shared schemas and options), each compiled on its route's first answer with that status
 * instead of at start: every route declares its error answers too, most of them are never sent by
 * a given instance, and the compiled code is start time and resident memory.
 */
const lazySerializers: SerializerFactory = (externalSchemas, options) => {
  const fromFastify = createRequire(createRequire(import.meta.url).resolve('fastify'));
  const { SerializerSelector } = fromFastify('@fastify/fast-json-stringify-compiler') as {
    SerializerSelector: () => SerializerFactory;
  };
  const compile = SerializerSelector()(externalSchemas, options);
  return (route) => {
    let compiled: Serialize | undefined;
    return (doc) => {
      compiled ??= compile(route);
      return compiled(doc);
    };
  };
};

export interface ServerOptionsInput {
  /** The process's logger (from `createLogger`), or false for none (tests). */
  logger: FastifyBaseLogger | false;
  trustProxy?: TrustProxy;
  bodyLimit?: number;
}

/** The Fastify options both services are built with. */
export function serverOptions(
  opts: ServerOptionsInput,
): FastifyServerOptions & { loggerInstance?: FastifyBaseLogger } {
  return {
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    // Requests in flight finish on close; idle keep-alive connections do not hold shutdown up.
    forceCloseConnections: 'idle',
    bodyLimit: opts.bodyLimit ?? defaultBodyLimit,
    // Off by default: the client address (and so each per-client rate limit) is the socket's
    // unless an operator says which proxies to believe (TRUST_PROXY).
    // A hop count is supported at runtime (Fastify's request.js) though its types omit it.
    trustProxy: (opts.trustProxy ?? false) as FastifyServerOptions['trustProxy'],
    requestIdHeader: false,
    genReqId: requestIdOf,
    schemaController: {
      compilersFactory: {
        buildSerializer: lazySerializers as NonNullable<
          NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']
        >['buildSerializer'],
      },
    },
  };
}

/** The API answers JSON, and a few plain pages (links in emails) with an inline style: no scripts, nothing loaded, no framing. */
const apiPolicy =
  "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
/** swagger-ui loads its own scripts and styles from /docs and sets inline style attributes. */
const docsPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
].join('; ');

/**
 * Security headers on every answer (what @fastify/helmet would set for a JSON API; helmet sets one
 * policy per app, and /docs needs its own): a CSP that forbids everything except under `/docs`,
 * no framing, no sniffing, no referrer; and the request id, so a caller can quote it.
 */
export const securityHeadersPlugin = fp(
  async (app: FastifyInstance, opts: { docsPrefix?: string }) => {
    const docsPrefix = opts.docsPrefix ?? '/docs';
    app.addHook('onSend', async (request, reply, payload) => {
      const path = request.url.split('?')[0] ?? '';
      const docs = path === docsPrefix || path.startsWith(`${docsPrefix}/`);
      reply.header('content-security-policy', docs ? docsPolicy : apiPolicy);
      reply.header('x-frame-options', 'DENY');
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('cross-origin-opener-policy', 'same-origin');
      reply.header('x-request-id', String(request.id));
      return payload;
    });
  },
  { name: 'service-kit-security-headers', fastify: '5.x' },
);

export interface Listening {
  /** `http://host:port` (an IPv6 loopback reads `localhost`). */
  url: string;
  /** Stops accepting, lets requests in flight finish, runs the onClose hooks; the same promise on every call. */
  close(): Promise<void>;
}

/**
 * Listens, or closes the app before rethrowing: a port in use must not leave the consumer, the
 * worker or the relay that `ready` started running behind a failed start.
 */
export async function listenOrClose(
  app: FastifyInstance,
  opts: { port: number; host?: string | undefined },
): Promise<Listening> {
  let address: string;
  try {
    address = await app.listen({ port: opts.port, host: opts.host ?? '127.0.0.1' });
  } catch (err) {
    await app.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url: address.replace('://[::1]', '://localhost'),
    close() {
      closing ??= app.close();
      return closing;
    },
  };
}
