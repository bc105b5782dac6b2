import type { Accounts } from '../../application/accounts.ts';

export interface RateLimit {
  max: number;
  timeWindow: number | string;
}

/** Per-client (IP) limits of the routes an attacker would hammer. */
export interface RateLimits {
  signUp: RateLimit;
  /** Password sign-in: creating an API key (the only route taking a password). */
  login: RateLimit;
  /** Anything that sends a verification or reset email. */
  emailRequests: RateLimit;
}

export const defaultRateLimits: RateLimits = {
  signUp: { max: 10, timeWindow: '1 minute' },
  login: { max: 10, timeWindow: '1 minute' },
  emailRequests: { max: 10, timeWindow: '1 minute' },
};

export interface RouteOptions {
  accounts: Accounts;
  rateLimits: RateLimits;
}
