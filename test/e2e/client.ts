/** HTTP clients of the two services as a user, an admin or an automation would call them. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { ReceivedEmail } from '@sitemail/testkit';
import { eventually } from './stack.ts';

export interface Reply<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export const basic = (login: string, password: string) =>
  `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
export const token = (secret: string) => `token ${secret}`;

/** One request and its answer as `call` saw them (for checks over everything a run received). */
export interface Exchange {
  method: string;
  url: string;
  status: number;
  headers: [string, string][];
  body: string;
}

const exchangeObservers = new Set<(e: Exchange) => void>();

/** `observer` sees every exchange of `call` from now on; the returned function stops it. */
export function observeExchanges(observer: (e: Exchange) => void): () => void {
  exchangeObservers.add(observer);
  return () => exchangeObservers.delete(observer);
}

export async function call<T = Record<string, unknown>>(
  base: string,
  method: string,
  path: string,
  /** `raw`: a body that is not JSON (e.g. a DSN as message/rfc822), sent as it is. */
  o: { body?: unknown; auth?: string; raw?: { contentType: string; body: string } } = {},
): Promise<Reply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(o.raw ? { 'content-type': o.raw.contentType } : {}),
      ...(o.auth ? { authorization: o.auth } : {}),
    },
    ...(o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
    ...(o.raw ? { body: o.raw.body } : {}),
  });
  const text = await res.text();
  for (const observe of exchangeObservers) {
    observe({
      method,
      url: `${base}${path}`,
      status: res.status,
      headers: [...res.headers.entries()],
      body: text,
    });
  }
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

/** Asserts the status, showing the body when it differs. */
export function expectStatus<T>(reply: Reply<T>, status: number, what: string): T {
  assert.equal(reply.status, status, `${what}: HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

export interface UserView {
  id: string;
  username: string;
  siteAdmin: boolean;
  primaryEmail: string;
  emails: { email: string; verified: boolean; primary: boolean }[];
  authProvider: { type: string; externalId: string | null };
  hasPassword: boolean;
}

export interface Delivery {
  id: string;
  status: 'queued' | 'sending' | 'deferred' | 'sent' | 'failed' | 'suppressed';
  emailKind: string;
  recipientAddress: string | null;
  userId: string | null;
  eventType: string;
  suppressionReason: string | null;
  notSentReason: string | null;
  messageId: string;
}

/** A distinct name and address per call, so scenarios sharing a stack never see each other's users. */
export function newPerson(prefix: string) {
  const id = randomBytes(3).toString('hex');
  return {
    username: `${prefix}-${id}`,
    email: `${prefix}-${id}@users.e2e.example.com`,
    password: `pw-${randomBytes(9).toString('base64url')}`,
  };
}

/** The first link in the email's plain text that starts with `prefix`. */
export function linkIn(email: ReceivedEmail, prefix: string): URL {
  const escaped = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`${escaped}[^\\s<>"]*`).exec(email.text ?? '');
  assert.ok(match, `no link starting ${prefix} in the email "${email.subject}":\n${email.text}`);
  return new URL(match[0]);
}

export class Accounts {
  /** `secrets` collects every API key secret and link code this client handles, to check the logs for them. */
  constructor(
    readonly url: string,
    private readonly secrets: Set<string> = new Set(),
  ) {}

  async signUp(
    p: { username: string; email: string; password: string },
    extra: Record<string, unknown> = {},
  ) {
    return expectStatus(
      await call<UserView>(this.url, 'POST', '/sign-up', { body: { ...p, ...extra } }),
      201,
      'sign-up',
    );
  }

  async user(userId: string, auth: string) {
    return expectStatus(
      await call<UserView>(this.url, 'GET', `/users/${userId}`, { auth }),
      200,
      'read user',
    );
  }

  /** Creates an API key for `userId` (with a password: Basic auth; else an API key of the user or an admin). */
  async createKey(userId: string, auth: string, name = 'e2e key') {
    const body = expectStatus(
      await call<{ key: { id: string; name: string }; secret: string }>(
        this.url,
        'POST',
        `/users/${userId}/api-keys`,
        {
          auth,
          body: { name },
        },
      ),
      201,
      'create API key',
    );
    this.secrets.add(body.secret);
    return body;
  }

  async addEmail(userId: string, email: string, auth: string) {
    return expectStatus(
      await call<UserView>(this.url, 'POST', `/users/${userId}/emails`, { auth, body: { email } }),
      201,
      'add address',
    );
  }

  /** Follows a link from an email as an API client (JSON answer). */
  async follow(link: URL) {
    const code = link.searchParams.get('code');
    if (code) this.secrets.add(code);
    return call(link.origin, 'GET', `${link.pathname}${link.search}`);
  }
}

export class Notifications {
  constructor(
    readonly url: string,
    private readonly adminAuth: () => string,
  ) {}

  async deliveries(filter: { userId?: string; address?: string }): Promise<Delivery[]> {
    const q = new URLSearchParams({ ...filter, limit: '500' });
    const reply = await call<{ deliveries: Delivery[] }>(this.url, 'GET', `/deliveries?${q}`, {
      auth: this.adminAuth(),
    });
    return expectStatus(reply, 200, 'list deliveries').deliveries;
  }

  /** Waits until a delivery matching `match` is in the log (the event that caused it was processed). */
  async waitForDelivery(
    filter: { userId?: string; address?: string },
    match: (d: Delivery) => boolean,
    what: string,
  ): Promise<Delivery> {
    return eventually(`delivery: ${what}`, async () => (await this.deliveries(filter)).find(match));
  }

  /**
   * The user's deliveries once none is still on its way (queued, sending, deferred), so what
   * reached the mailbox can be compared with them.
   */
  async settled(filter: { userId?: string; address?: string }): Promise<Delivery[]> {
    return eventually('deliveries settled', async () => {
      const all = await this.deliveries(filter);
      return all.some((d) => ['queued', 'sending', 'deferred'].includes(d.status)) ? undefined : all;
    });
  }
}

/** "kind → address (status[: reason])", oldest first: compact to compare. */
export const describeDeliveries = (ds: Delivery[]) =>
  [...ds]
    .reverse()
    .map(
      (d) =>
        `${d.emailKind} → ${d.recipientAddress} (${d.status}${d.suppressionReason ? `: ${d.suppressionReason}` : ''})`,
    );

/**
 * The first user of a site becomes its site admin and obtains its first API key with its
 * password; resolves once notifications knows the key (it projects keys from the accounts topic).
 */
export async function bootstrapAdmin(accounts: Accounts, notificationsUrl: string) {
  const p = newPerson('admin');
  const user = await accounts.signUp(p);
  assert.equal(user.siteAdmin, true, 'the first user is site admin');
  const { secret } = await accounts.createKey(user.id, basic(p.username, p.password), 'admin key');
  const admin = { id: user.id, username: p.username, email: p.email, auth: token(secret) };
  await eventually('notifications to know the admin key', async () => {
    const reply = await call(notificationsUrl, 'GET', `/deliveries?userId=${admin.id}`, { auth: admin.auth });
    return reply.status === 200 ? true : undefined;
  });
  return admin;
}
