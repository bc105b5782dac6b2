import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import Type from 'typebox';

/** RFC 9457 problem details, the body of every error this service answers (but /test-email's own). */
export const Problem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.Optional(Type.String()),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);

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
  503: 'Service Unavailable',
};

export function sendProblem(reply: FastifyReply, status: number, detail?: string): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: titles[status] ?? 'Error', status, ...(detail ? { detail } : {}) });
}

/** One error handler: validation and client errors say what was wrong; 5xx never show internals. */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error.validation) {
      const first = error.validation[0];
      const params = (first?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
      const path = first?.instancePath?.split('/').filter(Boolean).join('.');
      const where = error.validationContext ?? 'request';
      const detail = params.additionalProperty
        ? `unknown ${where} field "${[path, params.additionalProperty].filter(Boolean).join('.')}"`
        : `invalid ${where}${path || params.missingProperty ? ` field "${path || params.missingProperty}"` : ''}: ${first?.message ?? 'invalid'}`;
      return sendProblem(reply, 400, detail);
    }
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    if (status >= 500) {
      request.log.error(
        { err: { name: error.name, message: error.message, stack: error.stack } },
        'request failed',
      );
      return sendProblem(reply, status, 'internal error');
    }
    return sendProblem(reply, status, error.message);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, 404, `no route ${request.method} ${request.url.split('?')[0]}`),
  );
}
