import { apiKeyChallenge, HttpProblem } from '@sitemail/service-kit';

/**
 * Notifications' errors are the service kit's problem bodies (the same shape as accounts'); these
 * build the few it raises itself. Each detail is safe to show: it never carries a credential.
 */
export const unauthenticated = (
  detail = 'authentication required: send "Authorization: token <API key>" or "Authorization: Bearer <API key>"',
) => new HttpProblem({ status: 401, code: 'unauthenticated', detail });

export const forbidden = (detail: string) => new HttpProblem({ status: 403, code: 'forbidden', detail });

export const notFound = (detail: string, field?: string) =>
  new HttpProblem({ status: 404, code: 'not-found', detail, ...(field ? { field } : {}) });

export const invalidInput = (detail: string, field: string) =>
  new HttpProblem({ status: 400, code: 'invalid-input', detail, field });

/** Every 401 names the schemes notifications takes: API keys only (no passwords here). */
export const notificationsChallenge = apiKeyChallenge({ realm: 'sitemail notifications' });
