import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import Type, { type TProperties } from 'typebox';

/** The members of every problem body (RFC 9457), both services alike. */
export const problemProperties = {
  type: Type.String({ description: 'A URI naming the kind of problem: /problems/<code>' }),
  title: Type.String({ description: 'The HTTP status phrase' }),
  status: Type.Integer({ minimum: 400, maximum: 599 }),
  code: Type.String({ description: 'Stable machine-readable code (e.g. invalid-input, rate-limited)' }),
  detail: Type.String({ description: 'What went wrong, safe to show; never contains a secret' }),
  field: Type.Optional(Type.String({ description: 'The input field the problem is about' })),
  requestId: Type.String({ description: 'Quote it when reporting a problem; it names the log lines' }),
};

/** RFC 9457 problem details: every error answer of both services. */
export const Problem = Type.Object(problemProperties, { additionalProperties: false });

/** A problem body with documented extra members (notifications' `/test-email` keeps its `message`). */
export const problemWith = <P extends TProperties>(extra: P) =>
  Type.Object({ ...problemProperties, ...extra }, { additionalProperties: false });

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
  requestId: string;
  [extra: string]: unknown;
}

/** What a service says about one of its own errors; the plugin turns it into a body. */
export interface ProblemInit {
  status: number;
  code: string;
  detail: string;
  field?: string;
  /** Extra members beside the standard ones (documented in the route's response schema). */
  extra?: Record<string, unknown>;
}

/**
 * An error a service throws (or subclasses) to answer with a problem: the plugin answers it with
 * its status, code, detail and field as they are, so its message must be safe to show.
 */
export class HttpProblem extends Error implements ProblemInit {
  readonly status: number;
  readonly code: string;
  readonly field?: string;
  readonly extra?: Record<string, unknown>;
  constructor(init: ProblemInit) {
    super(init.detail);
    this.name = 'HttpProblem';
    this.status = init.status;
    this.code = init.code;
    if (init.field !== undefined) this.field = init.field;
    if (init.extra !== undefined) this.extra = init.extra;
  }
  get detail(): string {
    return this.message;
  }
}

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  410: 'Gone',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export const problemTitle = (status: number): string =>
  titles[status] ?? (status >= 500 ? 'Server Error' : 'Client Error');

/** The `www-authenticate` value a 401 carries, set by the plugin from its `wwwAuthenticate` option. */
const challengeKey = Symbol.for('sitemail.service-kit.www-authenticate');
type WithChallenge = FastifyInstance & { [challengeKey]?: string };

export function problemBody(init: ProblemInit, requestId: string): ProblemBody {
  return {
    ...init.extra,
    type: `/problems/${init.code}`,
    title: problemTitle(init.status),
    status: init.status,
    code: init.code,
    detail: init.detail,
    ...(init.field === undefined ? {} : { field: init.field }),
    requestId,
  };
}

/** Answers with a problem body (application/problem+json); a 401 carries `www-authenticate`. */
export function sendProblem(reply: FastifyReply, init: ProblemInit): FastifyReply {
  const challenge = (reply.server as WithChallenge)[challengeKey];
  if (init.status === 401 && challenge) reply.header('www-authenticate', challenge);
  return reply
    .code(init.status)
    .type('application/problem+json')
    .send(problemBody(init, String(reply.request.id)));
}

interface ValidationIssue {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: { requiredProperties?: string[]; additionalProperties?: string[]; missingProperty?: string };
}

/**
 * One validation wording for both services: `email is required`, `colour is not a known field`,
 * `query limit must be >= 1`; `field` names the member (dotted path), or the part (`body`).
 */
export function validationProblem(err: Pick<FastifyError, 'validation' | 'validationContext' | 'message'>): {
  field: string;
  detail: string;
} {
  const issues = [...((err.validation ?? []) as ValidationIssue[])];
  const context = err.validationContext ?? 'body';
  const first = issues.find((i) => i.keyword !== 'boolean') ?? issues[0];
  if (!first) return { field: context, detail: err.message };
  const missing = first.params?.requiredProperties?.[0] ?? first.params?.missingProperty;
  const unknown = first.params?.additionalProperties?.[0];
  const path = (first.instancePath ?? '').replace(/^\//, '').replaceAll('/', '.');
  const field = missing ?? unknown ?? (path || context);
  const what = missing ? 'is required' : unknown ? 'is not a known field' : (first.message ?? 'is invalid');
  return { field, detail: `${context === 'body' ? '' : `${context} `}${field} ${what}` };
}

export interface ProblemsOptions {
  /** Maps a service's own errors (domain refusals...) to a problem; undefined: not one of ours. */
  toProblem?: (err: unknown) => ProblemInit | undefined;
  /** The `www-authenticate` challenge of a 401, e.g. `token, Bearer, Basic realm="accounts"`. */
  wwwAuthenticate?: string;
}

/**
 * One error handler and one not-found handler: service errors (`toProblem`, `HttpProblem`) keep
 * their status; validation errors name the field; Fastify's own client errors (malformed JSON,
 * 413, 415) keep theirs; anything else is logged and answered as a bare 500 quoting the request
 * id, so no internal detail (SQL, stack, secret) reaches the caller.
 */
export const problemsPlugin = fp(
  async (app: FastifyInstance, opts: ProblemsOptions) => {
    if (opts.wwwAuthenticate) (app as WithChallenge)[challengeKey] = opts.wwwAuthenticate;
    app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      const mapped = opts.toProblem?.(err);
      if (mapped) return sendProblem(reply, mapped);
      if (err instanceof HttpProblem) return sendProblem(reply, err);
      if (err.validation) {
        const { field, detail } = validationProblem(err);
        return sendProblem(reply, { status: 400, code: 'invalid-input', detail, field });
      }
      const status = err.statusCode ?? 500;
      if (status === 429) {
        return sendProblem(reply, { status, code: 'rate-limited', detail: 'too many requests; retry later' });
      }
      if (status >= 400 && status < 500) {
        // Fastify's own client errors (malformed JSON, wrong content type, body too large) say nothing secret.
        const code = (err.code ?? 'bad-request').toLowerCase();
        return sendProblem(reply, { status, code, detail: err.message });
      }
      request.log.error({ err }, 'request failed');
      return sendProblem(reply, {
        status: 500,
        code: 'internal',
        detail: `internal error; quote request id ${request.id} when reporting it`,
      });
    });
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, {
        status: 404,
        code: 'no-route',
        detail: `no route ${request.method} ${request.url.split('?')[0]}`,
      }),
    );
  },
  { name: 'service-kit-problems', fastify: '5.x' },
);

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: Problem } },
});

/** A route `response` entry for an error status, documented as a problem. */
export const problemResponseFor = problemResponse;

/** Error responses by status, to spread into a route's `response` (`...problemsFor(400, 401)`). */
export const defaultProblemResponses = {
  400: problemResponse('Invalid input; `field` names the offending field'),
  401: problemResponse('Missing or invalid credentials'),
  403: problemResponse('Authenticated, but not allowed'),
  404: problemResponse('Not found'),
  409: problemResponse('A conflict with the current state'),
  413: problemResponse('Body too large'),
  429: problemResponse('Rate limited'),
  500: problemResponse('Internal error; quote the request id'),
  503: problemResponse('Not ready'),
} as const;
