import type { Refusal } from '../domain/user/index.ts';

/** A command the domain refused; the HTTP layer maps `refusal.refusal` to a status. */
export class RefusalError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
    this.name = 'RefusalError';
  }
}

export type ProblemCode =
  | 'invalid-input'
  | 'wrong-password'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'username-taken'
  | 'email-taken'
  | 'external-account-exists'
  | 'stale-version'
  | 'invalid-link'
  | 'conflict';

const statusOf: Record<ProblemCode, number> = {
  'invalid-input': 400,
  'wrong-password': 400,
  unauthenticated: 401,
  forbidden: 403,
  'not-found': 404,
  'username-taken': 409,
  'email-taken': 409,
  'external-account-exists': 409,
  'stale-version': 409,
  conflict: 409,
  // A link that is unknown, used or expired: the request is well-formed, the code is not valid.
  'invalid-link': 400,
};

/** A failure of the application layer (authentication, cross-user uniqueness, links) with its status. */
export class AccountsError extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'AccountsError';
    this.status = statusOf[code];
  }
}
