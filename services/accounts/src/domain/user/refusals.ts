/**
 * Why a command was refused. The HTTP layer maps each code to a status (see `http/problems.ts`);
 * the message is safe to show to the caller.
 */
export type RefusalCode =
  | 'user-exists'
  | 'user-not-found'
  | 'email-not-found'
  | 'email-exists'
  | 'too-many-unverified-emails'
  | 'cannot-remove-primary-email'
  | 'primary-email-must-be-verified'
  | 'email-already-verified'
  | 'email-not-verified'
  | 'sent-too-recently'
  | 'smtp-not-configured'
  | 'builtin-auth-disabled'
  | 'api-key-name-taken'
  | 'api-key-not-found'
  | 'cannot-change-own-site-admin'
  | 'cannot-invite-own-email'
  | 'already-invited'
  | 'user-already-deleted'
  | 'wrong-credential'
  | 'last-site-admin';

export interface Refusal {
  refusal: RefusalCode;
  message: string;
  /** The input field the refusal is about, when there is one. */
  field?: string;
}

export const refuse = (refusal: RefusalCode, message: string, field?: string): Refusal =>
  field === undefined ? { refusal, message } : { refusal, message, field };

export const isRefusal = (value: unknown): value is Refusal =>
  typeof value === 'object' && value !== null && 'refusal' in value && !Array.isArray(value);

// Refusals more than one command gives, built here once so their wording stays the same.

export const userNotFound = () => refuse('user-not-found', 'user not found');

export const emailNotFound = (email: string) =>
  refuse('email-not-found', `the user has no address ${email}`, 'email');

export const builtinDisabled = () =>
  refuse(
    'builtin-auth-disabled',
    'password sign-in is not enabled on this site (no builtin entry in auth.providers)',
  );

/** `what` is what could not be sent: "no email", "no reset link". */
export const smtpNotConfigured = (what: string) =>
  refuse('smtp-not-configured', `no SMTP server configured (in email.smtp): ${what} can be sent`);
