/**
 * Fuzzing both services through their own OpenAPI documents: accounts and notifications as
 * separate processes (Kafka mock cluster, Postgres or PGlite, a real SMTP server), every
 * operation of each `GET /openapi.json` requested with values fast-check draws from the
 * operation's schemas — valid ones and hostile ones — under several kinds of credentials.
 *
 * No request may get a 5xx and both services must stay up. Bounded and reproducible: an edge pass
 * (every parameter and body field × a fixed list of boundary values, as the site admin), then
 * FUZZ_RUNS (default 2000) random requests from FUZZ_SEED (printed). Loopback only: every request
 * goes to 127.0.0.1, and an unsaved SMTP server in a /test-email body is always 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { Accounts, basic, call, expectStatus, newPerson, token } from '../e2e/client.ts';
import { freePort } from '../e2e/processes.ts';
import { eventually, type Stack, startStack } from '../e2e/stack.ts';
import {
  edgeRequests,
  type FuzzRequest,
  type Ingredients,
  type Operation,
  operationName,
  operationsOf,
  requestArb,
} from './openapi-requests.ts';
import { headerSafe, send } from './raw-http.ts';
import { hostileString } from './schema-arbitrary.ts';

const SEED = Number(process.env.FUZZ_SEED ?? 20_251_201);
const RUNS = Number(process.env.FUZZ_RUNS ?? 2000);
const CONCURRENCY = 4;
/** Source addresses 127.0.0.2 … : the per-address rate limits then stop only some of the requests. */
const SOURCE_IPS = 64;

let stack: Stack;
const people: {
  admin: { id: string; username: string; email: string; password: string; key: string };
  user: { id: string; username: string; email: string; secondEmail: string; key: string; revokedKey: string };
  spareKeyId: string;
  deliveryId: string;
  closedPort: number;
} = {} as never;

before(async () => {
  stack = await startStack({ label: 'fuzz' });
  const accounts = new Accounts(stack.accounts.url, stack.secrets);
  const a = newPerson('fuzzadmin');
  const adminUser = await accounts.signUp(a);
  assert.equal(adminUser.siteAdmin, true, 'the first user is site admin');
  const adminKey = (await accounts.createKey(adminUser.id, basic(a.username, a.password), 'admin')).secret;
  const spare = await accounts.createKey(adminUser.id, token(adminKey), 'spare, the fuzz may revoke it');
  const u = newPerson('fuzzuser');
  const user = await accounts.signUp(u);
  const userKey = (await accounts.createKey(user.id, basic(u.username, u.password), 'user')).secret;
  const revoked = await accounts.createKey(user.id, token(userKey), 'revoked');
  expectStatus(
    await call(stack.accounts.url, 'DELETE', `/users/${user.id}/api-keys/${revoked.key.id}`, {
      auth: token(userKey),
    }),
    204,
    'revoke',
  );
  const secondEmail = `second-${randomBytes(3).toString('hex')}@users.fuzz.example`;
  await accounts.addEmail(user.id, secondEmail, token(userKey));
  const deliveryId = await eventually('a delivery in the log', async () => {
    const r = await call<{ deliveries: { id: string }[] }>(
      stack.notifications.url,
      'GET',
      '/deliveries?limit=1',
      {
        auth: token(adminKey),
      },
    );
    return r.status === 200 ? r.body.deliveries[0]?.id : undefined;
  });
  Object.assign(people, {
    admin: { id: adminUser.id, username: a.username, email: a.email, password: a.password, key: adminKey },
    user: {
      id: user.id,
      username: u.username,
      email: u.email,
      secondEmail,
      key: userKey,
      revokedKey: revoked.secret,
    },
    spareKeyId: spare.key.id,
    deliveryId,
    closedPort: await freePort(),
  });
});

after(async () => {
  await stack?.stop();
});

function ingredients(): Ingredients {
  const { admin, user } = people;
  const headerString = hostileString.filter(headerSafe);
  const auths = fc.oneof(
    { weight: 6, arbitrary: fc.constant({ label: 'admin token', header: token(admin.key) }) },
    { weight: 2, arbitrary: fc.constant({ label: 'admin Bearer', header: `Bearer ${admin.key}` }) },
    { weight: 3, arbitrary: fc.constant({ label: 'user token', header: token(user.key) }) },
    { weight: 3, arbitrary: fc.constant({ label: 'none', header: undefined }) },
    { weight: 1, arbitrary: fc.constant({ label: 'revoked token', header: token(user.revokedKey) }) },
    {
      weight: 1,
      arbitrary: fc
        .stringMatching(/^[A-Za-z0-9_-]{43}$/)
        .map((s) => ({ label: 'unknown token', header: `token sitemail_${s}` })),
    },
    { weight: 1, arbitrary: headerString.map((s) => ({ label: 'garbage', header: s })) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom('token', 'Bearer', 'TOKEN', 'bearer', 'Token', 'Digest'), headerString)
        .map(([scheme, s]) => ({ label: `${scheme} garbage`, header: `${scheme} ${s}` })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        { label: 'admin token, padded', header: `token  ${admin.key} ` },
        { label: 'admin token, trailing junk', header: `token ${admin.key} x` },
        { label: 'admin token, no scheme', header: admin.key },
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constant({ label: 'Basic admin', header: basic(admin.username, admin.password) }),
    },
    {
      weight: 1,
      arbitrary: fc.constant({
        label: 'Basic wrong password',
        header: basic(user.username, 'not the password at all'),
      }),
    },
    {
      weight: 1,
      arbitrary: headerString.map((s) => ({
        label: 'Basic garbage',
        header: `Basic ${/^[A-Za-z0-9+/=]*$/.test(s) ? s : Buffer.from(s).toString('base64')}`,
      })),
    },
  );
  return {
    auths,
    known(op, name) {
      switch (name) {
        // The first known value is the edge pass's base: one that passes validation, so the
        // boundary value in the other field is what the service has to deal with.
        case 'userId':
          if (op.service === 'notifications') return [user.id, admin.id];
          // Not the non-admin user on the site-admin route: the fuzz would make it an admin; nor on
          // the deletion routes, where the fuzz would delete the user whose key the other requests use.
          if (op.path.endsWith('/site-admin')) return [admin.id, 'me'];
          if (
            op.path === '/users/{userId}/delete' ||
            (op.path === '/users/{userId}' && op.method === 'DELETE')
          )
            return ['me', admin.id];
          return [user.id, admin.id, 'me'];
        case 'email':
          return [user.secondEmail, user.email, admin.email];
        case 'keyId':
          return [people.spareKeyId];
        case 'id':
          return [people.deliveryId];
        case 'provider':
          return ['github'];
        case 'to':
          return ['fuzz-test@fuzz.example'];
        default:
          return [];
      }
    },
    sanitize(op, body) {
      return op.path === '/test-email' ? loopbackOnly(body, [people.closedPort, stack.smtp.port]) : body;
    },
  };
}

/**
 * Every `host` in the body becomes 127.0.0.1, every port-like `port` the closed port or the test
 * SMTP server's: the sandbox has no network and the fuzz must never make a service dial out.
 * A non-string host becomes `{}`, which no schema coercion turns into a host name.
 */
function loopbackOnly(v: unknown, ports: number[], depth = 0): unknown {
  // Only `smtp.host` is ever dialled; deeper nesting is the fuzz's deep-nesting values.
  if (depth > 16 || typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => loopbackOnly(x, ports, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'host') out[k] = typeof x === 'string' ? '127.0.0.1' : {};
    else if (k === 'port' && /^\s*[+-]?\d+(\.0*)?\s*$/.test(String(x)))
      out[k] = ports[Math.abs(Number.parseInt(String(x), 10)) % ports.length];
    else out[k] = loopbackOnly(x, ports, depth + 1);
  }
  return out;
}

interface Outcome {
  request: FuzzRequest;
  status: number | 'no answer';
  body: string;
}

/** What a 5xx answer may be: only the documented "the SMTP server or the connection failed" of /test-email. */
function isExpected5xx(o: Outcome): boolean {
  if (o.request.op.path !== '/test-email' || o.status !== 502) return false;
  try {
    return /^Failed to send test email: /.test(JSON.parse(o.body).message);
  } catch {
    return false;
  }
}

const describeRequest = (r: FuzzRequest) => {
  const body =
    r.body === undefined
      ? ''
      : ` body(${r.headers['content-type'] ?? 'no content-type'}): ${sample(String(r.body))}`;
  return `${r.method} ${sample(r.path, 300)} [auth: ${r.auth}; ${r.variant}]${body}`;
};
const sample = (s: string, n = 200) => {
  const j = JSON.stringify(s);
  return j.length > n ? `${j.slice(0, n)}…(${s.length} chars)` : j;
};

describe('fuzz: both services through their OpenAPI documents', () => {
  it('no request gets a 5xx, and both services stay up', async () => {
    const services = [stack.accounts, stack.notifications];
    const ops: Operation[] = [];
    for (const svc of services) {
      const doc = expectStatus(await call(svc.url, 'GET', '/openapi.json'), 200, `${svc.name} openapi.json`);
      ops.push(...operationsOf(svc.name, doc as never));
    }
    assert.ok(ops.length >= 20, `operations found: ${ops.map(operationName).join(', ')}`);
    const baseOf = (op: Operation) =>
      op.service === 'accounts' ? stack.accounts.url : stack.notifications.url;

    const ing = ingredients();
    const adminAuth = { label: 'admin token', header: token(people.admin.key) };
    const edge = ops.flatMap((op) => edgeRequests(op, ing, adminAuth, SEED));
    const random = fc.sample(fc.oneof(...ops.map((op) => requestArb(op, ing))), {
      seed: SEED,
      numRuns: RUNS,
    });
    const requests = [...edge, ...random];
    console.log(
      `fuzz: seed ${SEED} (FUZZ_SEED), ${edge.length} edge + ${random.length} random requests (FUZZ_RUNS) over ${ops.length} operations`,
    );

    const health: string[] = [];
    const monitor = setInterval(() => {
      for (const svc of services) {
        fetch(`${svc.url}/healthz`, { signal: AbortSignal.timeout(15_000) })
          .then((r) => {
            if (r.status !== 200)
              health.push(`${svc.name} /healthz ${r.status} at ${new Date().toISOString()}`);
          })
          .catch((e: Error) =>
            health.push(`${svc.name} /healthz: ${e.message} at ${new Date().toISOString()}`),
          );
      }
    }, 1000);

    const outcomes: Outcome[] = [];
    const started = Date.now();
    let next = 0;
    try {
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = next++; i < requests.length; i = next++) {
            const request = requests[i] as FuzzRequest;
            try {
              const reply = await send(baseOf(request.op), request, {
                sourceIp: `127.0.0.${2 + (i % SOURCE_IPS)}`,
                timeoutMs: 30_000,
              });
              outcomes.push({ request, status: reply.status, body: reply.body });
            } catch (err) {
              const oversized = request.body !== undefined && request.body.length > 1_048_576;
              // The server may answer 413 and close before reading a body past its limit.
              if (!oversized) outcomes.push({ request, status: 'no answer', body: (err as Error).message });
            }
          }
        }),
      );
    } finally {
      clearInterval(monitor);
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);

    for (const svc of services) {
      const counts = new Map<string, number>();
      for (const o of outcomes.filter((x) => x.request.op.service === svc.name)) {
        const key = isExpected5xx(o) ? '502(send failed)' : String(o.status);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const byStatus = [...counts.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([s, n]) => `${s}×${n}`);
      console.log(`fuzz: ${svc.name} ${total} requests: ${byStatus.join(' ')}`);
    }
    console.log(`fuzz: ${outcomes.length} answers in ${seconds} s`);

    const failures = outcomes.filter(
      (o) => o.status === 'no answer' || (o.status >= 500 && !isExpected5xx(o)),
    );
    // One line per operation and status, with up to three of its requests: the report stays readable.
    const grouped = new Map<string, Outcome[]>();
    for (const f of failures) {
      const key = `${operationName(f.request.op)} → ${f.status}`;
      grouped.set(key, [...(grouped.get(key) ?? []), f]);
    }
    const report = [...grouped.entries()].map(
      ([key, fs]) =>
        `${key} (${fs.length}×)\n${fs
          .slice(0, 3)
          .map((f) => `    ${describeRequest(f.request)}\n      → ${sample(f.body)}`)
          .join('\n')}`,
    );
    if (report.length) console.log(`fuzz findings:\n${report.join('\n')}`);

    for (const svc of services) {
      assert.ok(svc.alive(), `${svc.name} died during the fuzz:\n${svc.output().slice(-3000)}`);
      const h = await fetch(`${svc.url}/healthz`);
      assert.equal(h.status, 200, `${svc.name} /healthz after the fuzz`);
    }
    assert.deepEqual(health, [], 'both services answered /healthz 200 throughout');
    assert.deepEqual(report, [], `${failures.length} requests got a 5xx or no answer`);
  });
});
