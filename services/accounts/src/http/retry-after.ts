import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { AccountsError } from '../application/errors.ts';

/** An `onError` hook: a 429 that knows when to come back says so in `retry-after` (RFC 9110). */
export async function retryAfterHeader(
  _request: FastifyRequest,
  reply: FastifyReply,
  err: FastifyError | Error,
): Promise<void> {
  if (err instanceof AccountsError && err.retryAfterSeconds !== undefined) {
    reply.header('retry-after', String(err.retryAfterSeconds));
  }
}
