import { type DestinationStream, type LoggerOptions, pino } from 'pino';

export type { DestinationStream } from 'pino';

/** What packages and services need of a logger: pino's call shape, declared structurally. */
export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug?(obj: object | string, msg?: string): void;
}

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Link codes and tokens ride in query strings (`?code=`) or paths; a log line must never carry one. */
export function redactUrl(url: string): string {
  return url
    .replace(/([?&](?:code|invitationCode|token|key)=)[^&#]*/gi, '$1REDACTED')
    .replace(/(\/-\/unsubscribe\/)[^/?#]+/g, '$1REDACTED'); // notifications' one-click links (token in the path)
}

const requestSerializer = (req: { method: string; url: string; ip?: string; id?: unknown }) => ({
  method: req.method,
  url: redactUrl(req.url),
  remoteAddress: req.ip,
  id: req.id,
});

/**
 * Defence in depth: no line a service writes should carry these, but a careless one must not leak
 * them. Paths are pino's (fast-redact): `*.x` is `x` one level down.
 */
export const redactPaths = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'token',
  '*.token',
  'apiKey',
  '*.apiKey',
  'clientSecret',
  '*.clientSecret',
  'privateKey',
  '*.privateKey',
  'linkTokenKey',
  '*.linkTokenKey',
];

/** Pino options for a service: its name, the level, request lines without link codes, secrets redacted. */
export function loggerOptions(opts: { name: string; level?: LogLevel | undefined }): LoggerOptions {
  return {
    name: opts.name,
    level: opts.level ?? 'info',
    serializers: {
      req: requestSerializer as (req: unknown) => unknown,
      res: (reply: { statusCode?: number }) => ({ statusCode: reply.statusCode }),
    },
    redact: { paths: redactPaths, censor: 'REDACTED' },
  };
}

/**
 * The one logger of a process: pass it to Fastify as `loggerInstance` and to every package that
 * takes a `logger`, so all lines share one format and one redaction. JSON lines on stdout.
 */
export function createLogger(opts: {
  name: string;
  level?: LogLevel | undefined;
  /** Where lines go instead of stdout (tests collect them). */
  destination?: DestinationStream | undefined;
}) {
  const options = loggerOptions(opts);
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger instance (pino's, or a child of one), as opposed to logger options. */
export const isLoggerInstance = (value: unknown): value is Logger & { child: unknown } =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as { child?: unknown }).child === 'function' &&
  typeof (value as { info?: unknown }).info === 'function';
