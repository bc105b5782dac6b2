/**
 * Where secrets end up after a run that calls every route of both services with real flows
 * (sign-up and its link, an admin-created user and its set-password link, keys, addresses,
 * password change and reset, invitation, test emails with saved and unsaved settings, the
 * delivery log, admin toggles). The routes come from both `GET /openapi.json`: a route the run
 * does not call fails the test, so a new route gets its place here.
 *
 * Then the SMTP password (plain, base64, as an AUTH PLAIN token), every API key secret, every
 * link code, every user password and the stored password hashes are looked for in both services'
 * output, in every HTTP answer (body and headers), in every message on every Kafka topic and in
 * every file under the stack's directory — allowed only where they are meant to be: the SMTP
 * password in the site-config file, a key's secret in its creation answer, password hashes in
 * the accounts database.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openDatabase } from '@sitemail/db';
import { readTopic } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import { unknownMessageDsn } from '../../services/notifications/src/smtp/dsn.test-support.ts';
import {
  Accounts,
  basic,
  call,
  type Exchange,
  expectStatus,
  linkIn,
  newPerson,
  observeExchanges,
  token,
  type UserView,
} from '../e2e/client.ts';
import { eventually, type Stack, startStack } from '../e2e/stack.ts';
import { operationName, operationsOf, pathMatcher } from './openapi-requests.ts';

let stack: Stack;
let accounts: Accounts;
const exchanges: Exchange[] = [];
let stopObserving: () => void = () => {};
/** Every password a user had during the run. */
const passwords = new Set<string>();

before(async () => {
  stack = await startStack({ label: 'secrets' });
  accounts = new Accounts(stack.accounts.url, stack.secrets);
  stopObserving = observeExchanges((e) => exchanges.push(e));
});

after(async () => {
  stopObserving();
  await stack?.stop();
});

const ok = async <T>(reply: Promise<import('../e2e/client.ts').Reply<T>>, status: number, what: string) =>
  expectStatus(await reply, status, what);

/** Every route of both services, with the flows real users and admins go through. */
async function exerciseEverything() {
  const A = stack.accounts.url;
  const N = stack.notifications.url;
  const ext = String(stack.siteConfig.externalURL);

  // The first user: site admin; verifies its address through the emailed link.
  const a = newPerson('secadmin');
  passwords.add(a.password);
  const admin = await accounts.signUp(a);
  assert.equal(admin.siteAdmin, true);
  await accounts.follow(
    linkIn(await stack.mailbox.waitFor(a.email, /^Verify your email on/), `${ext}/-/verify-email`),
  );
  const adminKey = (await accounts.createKey(admin.id, basic(a.username, a.password), 'admin')).secret;
  const adminAuth = token(adminKey);
  await eventually('notifications to know the admin key', async () =>
    (await call(N, 'GET', '/deliveries?limit=1', { auth: adminAuth })).status === 200 ? true : undefined,
  );

  // A user created by the admin sets its password through the emailed link.
  const b = newPerson('secuser');
  const created = await ok(
    call<UserView>(A, 'POST', '/users', { auth: adminAuth, body: { username: b.username, email: b.email } }),
    201,
    'admin creates a user',
  );
  const setLink = linkIn(
    await stack.mailbox.waitFor(b.email, /^Set your password on/),
    `${ext}/password-reset`,
  );
  expectStatus(await accounts.follow(setLink), 200, 'open the set-password link');
  passwords.add(b.password);
  await ok(
    call(A, 'POST', '/password-reset', {
      body: { code: setLink.searchParams.get('code'), password: b.password },
    }),
    200,
    'set the password',
  );
  const userKey = (await accounts.createKey(created.id, basic(b.username, b.password), 'user')).secret;
  const userAuth = token(userKey);
  await ok(call(A, 'GET', '/users/me', { auth: userAuth }), 200, 'read yourself');

  // Users from automation and from an external provider.
  const c = newPerson('secapi');
  const apiUser = await ok(
    call<UserView>(A, 'POST', '/users', {
      auth: adminAuth,
      body: { username: c.username, email: c.email, origin: 'api' },
    }),
    201,
    'API-created user',
  );
  const g = newPerson('secgh');
  await ok(
    call(A, 'PUT', `/external-accounts/github/${randomBytes(4).readUInt32BE()}`, {
      auth: adminAuth,
      body: { username: g.username, email: g.email },
    }),
    201,
    'external account',
  );

  // Admin toggles.
  await ok(
    call(A, 'PUT', `/users/${created.id}/site-admin`, { auth: adminAuth, body: { siteAdmin: true } }),
    200,
    'make admin',
  );
  await ok(
    call(A, 'PUT', `/users/${created.id}/site-admin`, { auth: adminAuth, body: { siteAdmin: false } }),
    200,
    'unmake admin',
  );

  // Addresses: add, ask again, verify by link, make primary and back, admin-verify, remove.
  const second = `second-${b.email}`;
  await accounts.addEmail('me', second, userAuth);
  const again = await call(
    A,
    'POST',
    `/users/me/emails/${encodeURIComponent(second)}/verification-requests`,
    {
      auth: userAuth,
    },
  );
  assert.ok(
    [202, 429].includes(again.status),
    `verification request: ${again.status} ${JSON.stringify(again.body)}`,
  );
  await accounts.follow(
    linkIn(await stack.mailbox.waitFor(second, /^Verify your email on/), `${ext}/-/verify-email`),
  );
  await ok(
    call(A, 'PUT', '/users/me/primary-email', { auth: userAuth, body: { email: second } }),
    200,
    'primary',
  );
  await ok(
    call(A, 'PUT', '/users/me/primary-email', { auth: userAuth, body: { email: b.email } }),
    200,
    'primary back',
  );
  const third = `third-${b.email}`;
  await accounts.addEmail('me', third, userAuth);
  await ok(
    call(A, 'PUT', `/users/${created.id}/emails/${encodeURIComponent(third)}/verified`, {
      auth: adminAuth,
      body: { verified: true },
    }),
    200,
    'admin verifies',
  );
  await ok(
    call(A, 'DELETE', `/users/me/emails/${encodeURIComponent(third)}`, { auth: userAuth }),
    200,
    'remove address',
  );

  // Keys: list, create, revoke.
  await ok(call(A, 'GET', '/users/me/api-keys', { auth: userAuth }), 200, 'list keys');
  const extra = await accounts.createKey('me', userAuth, 'to revoke');
  await ok(call(A, 'DELETE', `/users/me/api-keys/${extra.key.id}`, { auth: userAuth }), 204, 'revoke');

  // Password change, then a reset through the emailed link.
  const changed = `changed-${randomBytes(9).toString('base64url')}`;
  passwords.add(changed);
  await ok(
    call(A, 'PUT', '/users/me/password', {
      auth: userAuth,
      body: { currentPassword: b.password, newPassword: changed },
    }),
    200,
    'change password',
  );
  await ok(call(A, 'POST', '/password-reset-requests', { body: { email: b.email } }), 202, 'ask for a reset');
  const resetLink = linkIn(
    await stack.mailbox.waitFor(b.email, /^Reset your password on/),
    `${ext}/password-reset`,
  );
  expectStatus(await accounts.follow(resetLink), 200, 'open the reset link');
  const reset = `reset-${randomBytes(9).toString('base64url')}`;
  passwords.add(reset);
  await ok(
    call(A, 'POST', '/password-reset', {
      body: { code: resetLink.searchParams.get('code'), password: reset },
    }),
    200,
    'reset the password',
  );

  // An invitation; the invitee signs up with its code.
  const d = newPerson('secinvitee');
  passwords.add(d.password);
  await ok(
    call(A, 'POST', '/invitations', { auth: adminAuth, body: { email: d.email, organization: 'acme' } }),
    201,
    'invite',
  );
  const invitation = linkIn(await stack.mailbox.waitFor(d.email, /invited you to/), `${ext}/-/invitation`);
  expectStatus(await accounts.follow(invitation), 200, 'open the invitation');
  await accounts.signUp(d, { invitationCode: invitation.searchParams.get('code') });

  // Notifications: test emails with the saved settings and with unsaved ones (the password typed
  // in, and REDACTED for the saved destination), then the delivery log.
  const smtp = stack.siteConfig['email.smtp'] as Record<string, unknown>;
  await ok(
    call(N, 'POST', '/test-email', { auth: adminAuth, body: { to: a.email } }),
    200,
    'test email, saved',
  );
  for (const password of [stack.smtpUser.password, 'REDACTED']) {
    const unsaved = {
      host: smtp.host,
      port: smtp.port,
      authentication: 'PLAIN',
      username: smtp.username,
      password,
    };
    await ok(
      call(N, 'POST', '/test-email', { auth: adminAuth, body: { to: a.email, smtp: unsaved } }),
      200,
      `test email, unsaved settings (${password === 'REDACTED' ? 'REDACTED' : 'password typed'})`,
    );
  }
  const deliveries = await eventually('every delivery settled', async () => {
    const r = await call<{ deliveries: { id: string; status: string }[] }>(
      N,
      'GET',
      '/deliveries?limit=500',
      {
        auth: adminAuth,
      },
    );
    const all = expectStatus(r, 200, 'delivery log').deliveries;
    return all.length && !all.some((x) => ['queued', 'sending', 'deferred'].includes(x.status))
      ? all
      : undefined;
  });
  for (const x of deliveries)
    await ok(call(N, 'GET', `/deliveries/${x.id}`, { auth: adminAuth }), 200, 'delivery');
  await ok(call(A, 'GET', '/healthz'), 200, 'accounts health');
  await ok(call(N, 'GET', '/healthz'), 200, 'notifications health');
  // Readiness, where a service has it (the coverage check below says whether it is documented).
  for (const base of [A, N]) await call(base, 'GET', '/readyz');
  // Operations: metrics, the delivery queue's state, the suppression list (nothing is listed here).
  for (const base of [A, N]) await ok(call(base, 'GET', '/metrics'), 200, 'metrics');
  await ok(call(N, 'GET', '/deliveries/queue', { auth: adminAuth }), 200, 'delivery queue');
  await ok(call(N, 'GET', '/suppressions', { auth: adminAuth }), 200, 'suppression list');
  const unlisted = encodeURIComponent(c.email);
  await ok(call(N, 'GET', `/suppressions/${unlisted}`, { auth: adminAuth }), 404, 'an address not listed');
  await ok(call(N, 'DELETE', `/suppressions/${unlisted}`, { auth: adminAuth }), 404, 'nothing to lift');
  // The one-click unsubscribe link (public, no login): a token that is not ours is a 400 to GET and
  // POST alike (http/unsubscribe.int.test.ts unsubscribes with real ones).
  await ok(call(N, 'GET', '/-/unsubscribe/not-a-token'), 400, 'an unsubscribe link not ours');
  await ok(
    call(N, 'POST', '/-/unsubscribe/not-a-token', { body: { 'List-Unsubscribe': 'One-Click' } }),
    400,
    'a one-click unsubscribe with a token not ours',
  );
  // A bounce about a message of nobody's here: matched 0 (http/bounces.int.test.ts bounces real ones).
  await ok(
    call(N, 'POST', '/bounces', {
      auth: adminAuth,
      raw: { contentType: 'message/rfc822', body: unknownMessageDsn() },
    }),
    202,
    'a DSN matching no delivery',
  );
  // Deletion: a wrong re-confirmation changes nothing; a site admin deletes the API-created user.
  await ok(
    call(A, 'POST', `/users/${created.id}/delete`, {
      auth: userAuth,
      body: { password: 'not-their-password' },
    }),
    400,
    'self-deletion with a wrong password',
  );
  await ok(
    call(A, 'DELETE', `/users/${apiUser.id}`, { auth: adminAuth }),
    204,
    'a site admin deletes a user',
  );
}

interface Secret {
  what: string;
  value: string;
  /** Where it may appear: a file path relative to the stack dir, or an exchange. */
  allowedFile?: (path: string) => boolean;
  allowedExchange?: (e: Exchange) => boolean;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return [];
    return st.isDirectory() ? filesUnder(path) : st.isFile() ? [path] : [];
  });
}

const HASH = /scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]{16,}\$[A-Za-z0-9_-]{16,}/g;

/** The stored password hashes: from the accounts schema on Postgres, from the PGlite files otherwise. */
async function passwordHashes(): Promise<string[]> {
  if (stack.postgresUrl) {
    const db = await openDatabase({ url: stack.postgresUrl, maxConnections: 1 });
    try {
      return (await db.query<{ hash: string }>('SELECT hash FROM accounts.passwords')).rows.map(
        (r) => r.hash,
      );
    } finally {
      await db.close();
    }
  }
  const found = new Set<string>();
  for (const f of filesUnder(join(stack.dir, 'accounts'))) {
    for (const m of readFileSync(f).toString('latin1').matchAll(HASH)) found.add(m[0]);
  }
  return [...found];
}

async function allKafkaMessages(): Promise<{ topic: string; text: string }[]> {
  const admin = new Kafka({
    brokers: stack.kafka.brokers,
    clientId: 'secrets-check',
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const out: { topic: string; text: string }[] = [];
    for (const topic of (await admin.listTopics()).filter((t) => !t.startsWith('__'))) {
      const count = (await admin.fetchTopicOffsets(topic)).reduce(
        (n, p) => n + Number(p.high) - Number(p.low),
        0,
      );
      for (const m of await readTopic(stack.kafka.brokers, topic, { count })) {
        out.push({ topic, text: `${m.key ?? ''}\n${JSON.stringify(m.headers)}\n${m.value ?? ''}` });
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

describe('secrets across a run of every route', () => {
  it('every route of both services was called, and no secret is anywhere it is not meant to be', async () => {
    await exerciseEverything();

    // Every documented operation was called at least once.
    const services = [stack.accounts, stack.notifications];
    const missing: string[] = [];
    for (const svc of services) {
      const doc = expectStatus(await call(svc.url, 'GET', '/openapi.json'), 200, `${svc.name} openapi.json`);
      for (const op of operationsOf(svc.name, doc as never)) {
        const re = pathMatcher(op.path);
        const called = exchanges.some((e) => {
          const url = new URL(e.url);
          return url.origin === svc.url && e.method === op.method && re.test(url.pathname);
        });
        if (!called) missing.push(operationName(op));
      }
    }
    assert.deepEqual(missing, [], 'routes the run never called');

    const smtp = stack.smtpUser;
    const inSiteConfig = (path: string) => path === 'site-config.jsonc';
    const isKeyCreation = (e: Exchange) =>
      e.method === 'POST' && /\/api-keys$/.test(new URL(e.url).pathname) && e.status === 201;
    const hashes = await passwordHashes();
    assert.ok(hashes.length >= 3, `password hashes found: ${hashes.length}`);
    const secrets: Secret[] = [
      { what: 'SMTP password', value: smtp.password, allowedFile: inSiteConfig },
      { what: 'SMTP password, base64', value: b64(smtp.password), allowedFile: inSiteConfig },
      { what: 'SMTP AUTH PLAIN token', value: b64(`\0${smtp.username}\0${smtp.password}`) },
      ...[...stack.secrets].map((value) => ({
        what: value.startsWith('sitemail_') ? 'API key secret' : 'link code',
        value,
        allowedExchange: (e: Exchange) => isKeyCreation(e) && value.startsWith('sitemail_'),
      })),
      ...[...passwords].map((value) => ({ what: 'user password', value })),
      ...hashes.flatMap((h) => {
        const [, , , , salt = '', key = ''] = h.split('$');
        const inAccountsDb = (path: string) => path.startsWith('accounts/');
        return [
          { what: 'password hash', value: h, allowedFile: inAccountsDb },
          { what: 'password hash key', value: key, allowedFile: inAccountsDb },
          { what: 'password hash salt', value: salt, allowedFile: inAccountsDb },
        ];
      }),
    ];
    const codes = [...stack.secrets].filter((s) => !s.startsWith('sitemail_'));
    const keys = [...stack.secrets].filter((s) => s.startsWith('sitemail_'));
    assert.ok(
      keys.length >= 3 && codes.length >= 5,
      `collected ${keys.length} keys and ${codes.length} link codes`,
    );

    // Controls: each place searched does hold what is meant to be there, so the search sees it.
    const messages = await allKafkaMessages();
    const files = filesUnder(stack.dir);
    assert.ok(
      readFileSync(join(stack.dir, 'site-config.jsonc'), 'utf8').includes(smtp.password),
      'the SMTP password is in the site-config file',
    );
    assert.ok(
      keys.every((k) => exchanges.some((e) => isKeyCreation(e) && e.body.includes(k))),
      'each key secret is in its creation answer',
    );
    assert.ok(
      keys.every((k) => messages.some((m) => m.text.includes(createHash('sha256').update(k).digest('hex')))),
      'each key travels as its SHA-256 on Kafka',
    );

    const leaks: string[] = [];
    const show = (s: Secret) => `${s.what} ${s.value.slice(0, 6)}…`;

    for (const svc of services) {
      const lines = svc.output().split('\n');
      for (const s of secrets) {
        const line = lines.find((l) => l.includes(s.value));
        if (line) leaks.push(`${show(s)} in the output of ${svc.name}: ${line.slice(0, 300)}`);
      }
    }

    for (const e of exchanges) {
      const text = `${e.headers.map(([k, v]) => `${k}: ${v}`).join('\n')}\n${e.body}`;
      for (const s of secrets) {
        if (text.includes(s.value) && !s.allowedExchange?.(e))
          leaks.push(`${show(s)} in the answer to ${e.method} ${e.url} (${e.status})`);
      }
    }

    assert.ok(
      messages.some((m) => m.topic.startsWith('accounts')),
      'the accounts topic was read',
    );
    for (const m of messages) {
      for (const s of secrets)
        if (m.text.includes(s.value)) leaks.push(`${show(s)} in a message on ${m.topic}`);
    }

    for (const f of files) {
      const bytes = readFileSync(f);
      const path = relative(stack.dir, f);
      for (const s of secrets) {
        if (s.value && bytes.includes(s.value) && !s.allowedFile?.(path))
          leaks.push(`${show(s)} in the file ${path}`);
      }
    }

    console.log(
      `secrets: ${secrets.length} values (${keys.length} API keys, ${codes.length} link codes, ${passwords.size} passwords, ${hashes.length} hashes, the SMTP password ×3) checked in ${exchanges.length} answers, ${messages.length} Kafka messages, ${files.length} files and both services' output`,
    );
    assert.deepEqual(leaks, [], 'secrets where they must not be');
  });
});
