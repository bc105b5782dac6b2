import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AccountsError, RefusalError } from '../application/errors.ts';
import type { RefusalCode } from '../domain/user/index.ts';

/** The HTTP status of each domain refusal. */
export const refusalStatus: Record<RefusalCode, number> = {
  'user-exists': 409,
  'user-not-found': 404,
  'email-not-found': 404,
  'email-exists': 409,
  'too-many-unverified-emails': 409,
  'cannot-remove-primary-email': 409,
  'primary-email-must-be-verified': 409,
  'email-already-verified': 409,
  'email-not-verified': 409,
  'sent-too-recently': 429,
  'smtp-not-configured': 409,
  'builtin-auth-disabled': 403,
  'api-key-name-taken': 409,
  'api-key-not-found': 404,
  'cannot-change-own-site-admin': 403,
  'cannot-invite-own-email': 409,
  'already-invited': 409,
};

const titles: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
};

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  field?: string;
  requestId?: string;
}

export function sendProblem(
  reply: FastifyReply,
  status: number,
  code: string,
  detail: string,
  field?: string,
): FastifyReply {
  const body: ProblemBody = {
    type: `/problems/${code}`,
    title: titles[status] ?? 'Error',
    status,
    code,
    detail,
    ...(field === undefined ? {} : { field }),
    requestId: String(reply.request.id),
  };
  if (status === 401) reply.header('www-authenticate', 'token, Basic realm="sitemail accounts"');
  return reply.code(status).type('application/problem+json').send(body);
}

interface ValidationIssue {
  keyword?: string;
  instancePath?: string;
  message?: string;
  params?: { requiredProperties?: string[]; additionalProperties?: string[]; missingProperty?: string };
}

/** `body/email must match format "email"` → field `email`; a missing or unknown property names itself. */
function validationProblem(err: FastifyError): { field: string; detail: string } {
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

/**
 * One error handler for the whole API: domain refusals and application errors become problem
 * details with their status; validation errors name the field; anything unexpected is logged and
 * answered as a bare 500, so no internal detail (SQL, stack, secret) reaches the caller.
 */
export const problemsPlugin = fp(
  async (app: FastifyInstance) => {
    app.setErrorHandler((err: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
      if (err instanceof RefusalError) {
        return sendProblem(
          reply,
          refusalStatus[err.refusal.refusal],
          err.refusal.refusal,
          err.refusal.message,
          err.refusal.field,
        );
      }
      if (err instanceof AccountsError)
        return sendProblem(reply, err.status, err.code, err.message, err.field);
      if (err.validation) {
        const { field, detail } = validationProblem(err);
        return sendProblem(reply, 400, 'invalid-input', detail, field);
      }
      const status = err.statusCode ?? 500;
      if (status === 429) return sendProblem(reply, 429, 'rate-limited', 'too many requests; retry later');
      if (status >= 400 && status < 500) {
        // Fastify's own client errors (malformed JSON, wrong content type, body too large) say nothing secret.
        return sendProblem(reply, status, (err.code ?? 'bad-request').toLowerCase(), err.message);
      }
      request.log.error({ err }, 'request failed');
      return sendProblem(
        reply,
        500,
        'internal',
        `internal error; quote request id ${request.id} when reporting it`,
      );
    });
    app.setNotFoundHandler((request, reply) =>
      sendProblem(reply, 404, 'no-route', `no route ${request.method} ${request.url.split('?')[0]}`),
    );
  },
  { name: 'accounts-problems' },
);
