/** Builders of valid fleet events for the tests: each test states only what matters to it. */
import { randomUUID } from 'node:crypto';
import {
  type AccountsEvent,
  type AccountsEventOf,
  type AccountsEventType,
  type CodeMonitorTriggered,
  type LinkTokenKey,
  parseLinkTokenKey,
  type SealedToken,
  sealToken,
} from '@sitemail/contracts';

export const testLinkKey: LinkTokenKey = parseLinkTokenKey(`ktest:${Buffer.alloc(32, 7).toString('base64')}`);

/** A user's stream: each event gets the next position. */
export class Stream {
  position = 0;
  constructor(readonly userId: string = randomUUID()) {}

  next<K extends AccountsEventType>(type: K, data: AccountsEventOf<K>['data']): AccountsEventOf<K> {
    this.position += 1;
    return {
      id: randomUUID(),
      type,
      userId: this.userId,
      position: this.position,
      time: new Date(Date.UTC(2026, 10, 25, 10, 0, this.position)).toISOString(),
      schemaVersion: 1,
      data,
    } as AccountsEventOf<K>;
  }

  seal(token: string, eventType: AccountsEventType): SealedToken {
    return sealToken(token, testLinkKey, this.userId, eventType);
  }

  created(o: {
    email: string;
    verified: boolean;
    username?: string;
    siteAdmin?: boolean;
    provider?: string;
  }) {
    return this.next('UserCreated', {
      username: o.username ?? 'alice',
      email: o.email,
      emailVerified: o.verified,
      origin: o.provider && o.provider !== 'builtin' ? 'external-provider' : 'builtin-signup',
      authProvider: { type: o.provider ?? 'builtin' },
      siteAdmin: o.siteAdmin ?? false,
    });
  }

  /** The link expires a week from now by default: an email whose link expired is not sent. */
  verificationRequested(
    email: string,
    token = 'verify-token-1',
    expiresAt = new Date(Date.now() + 7 * 24 * 3_600_000).toISOString(),
  ) {
    return this.next('EmailVerificationRequested', {
      email,
      token: this.seal(token, 'EmailVerificationRequested'),
      expiresAt,
    });
  }

  verified(email: string) {
    return this.next('EmailVerified', { email, method: 'verification-link' });
  }

  apiKeyCreated(name = 'CI', secretSha256 = 'a'.repeat(64)) {
    return this.next('ApiKeyCreated', { keyId: randomUUID(), name, createdBy: this.userId, secretSha256 });
  }
}

export function codeMonitorTriggered(
  userId: string,
  monitorName = 'New uses of eval',
  position = 1,
): CodeMonitorTriggered {
  return {
    id: randomUUID(),
    type: 'CodeMonitorTriggered',
    userId,
    position,
    time: '2026-11-25T11:00:00.000Z',
    schemaVersion: 1,
    data: {
      monitorId: randomUUID(),
      monitorName,
      query: 'eval( lang:javascript',
      resultCount: 3,
      resultsPath: '/code-monitoring/m1/results',
    },
  };
}

export type { AccountsEvent };
