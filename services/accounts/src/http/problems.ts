import { apiKeyChallenge, type ProblemInit } from '@sitemail/service-kit';
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
  'user-already-deleted': 410,
  // As a wrong current password on a password change: the request is well-formed, the proof is not.
  'wrong-credential': 400,
  'last-site-admin': 409,
};

/** Domain refusals and application errors as problems (the kit's plugin answers the rest). */
export function accountsProblem(err: unknown): ProblemInit | undefined {
  if (err instanceof RefusalError) {
    const { refusal, message, field } = err.refusal;
    return {
      status: refusalStatus[refusal],
      code: refusal,
      detail: message,
      ...(field === undefined ? {} : { field }),
    };
  }
  if (err instanceof AccountsError) {
    return {
      status: err.status,
      code: err.code,
      detail: err.message,
      ...(err.field === undefined ? {} : { field: err.field }),
    };
  }
  return undefined;
}

/** A 401 names every scheme accounts takes: API keys either way, and a password where a first key is made. */
export const accountsChallenge = apiKeyChallenge({ realm: 'sitemail accounts', basic: true });
