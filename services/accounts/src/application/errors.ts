import type { Refusal } from '../domain/user/index.ts';
import type { UniqueRule } from '../store/unique-violations.ts';

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
  | 'too-many-password-failures'
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
  'too-many-password-failures': 429,
};

/** A failure of the application layer (authentication, cross-user uniqueness, links) with its status. */
export class AccountsError extends Error {
  readonly status: number;
  constructor(
    readonly code: ProblemCode,
    message: string,
    readonly field?: string,
    /** Seconds to wait before retrying (the `retry-after` header of a 429). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AccountsError';
    this.status = statusOf[code];
  }
}

// Each failure is built here once, so its code, wording and field are the same wherever it happens.

export const refused = (refusal: Refusal) => new RefusalError(refusal);

export const invalidInput = (detail: string, field: string) =>
  new AccountsError('invalid-input', detail, field);

export const forbidden = (detail: string) => new AccountsError('forbidden', detail);

export const userNotFound = () => new AccountsError('not-found', 'user not found', 'userId');

export const usernameTaken = (username: string) =>
  new AccountsError('username-taken', `the username "${username}" is taken`, 'username');

export const emailTaken = (email: string) =>
  new AccountsError('email-taken', `the address ${email} belongs to another user`, 'email');

export const externalAccountExists = () =>
  new AccountsError(
    'external-account-exists',
    'a user already exists for this external account',
    'externalId',
  );

export const concurrentConflict = () =>
  new AccountsError('conflict', 'the request conflicts with a concurrent change; retry it');

/** The caller sent `If-Match` with a version the user is no longer (or not yet) at. */
export const staleVersion = (actual: number, expected: number) =>
  new AccountsError(
    'stale-version',
    `the user is at version ${actual}, not ${expected}: reload and retry`,
    'If-Match',
  );

/** Another command on the user committed between reading and appending, and no retry was allowed. */
export const changedConcurrently = () =>
  new AccountsError('stale-version', 'the user was changed concurrently: reload and retry', 'If-Match');

export const invalidLink = () =>
  new AccountsError('invalid-link', 'this link is invalid, already used or expired', 'code');

export const wrongPassword = () =>
  new AccountsError('wrong-password', 'the current password is wrong', 'currentPassword');

/** The per-account password throttle: the same answer for every login, known or not. */
export const tooManyPasswordFailures = (retryAfterSeconds: number) =>
  new AccountsError(
    'too-many-password-failures',
    `too many failed password attempts for this account; retry in ${retryAfterSeconds} seconds`,
    undefined,
    retryAfterSeconds,
  );

/** A unique index of the read model refused the append: another user took the name or address first. */
export function uniqueConflict(
  rule: UniqueRule,
  input: { username?: string; email?: string },
): AccountsError {
  switch (rule) {
    case 'username':
      return usernameTaken(input.username ?? '');
    case 'email':
      return emailTaken(input.email ?? '');
    case 'external-account':
      return externalAccountExists();
    case 'first-user':
    case 'other':
      return concurrentConflict();
    default: {
      const unexpected: never = rule;
      throw new Error(`unknown unique rule ${String(unexpected)}`);
    }
  }
}
