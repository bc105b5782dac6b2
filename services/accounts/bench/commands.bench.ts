/**
 * How fast accounts decides and commits commands through its HTTP API (app.inject, no network),
 * on Postgres when DATABASE_URL is set, else PGlite. Prints figures; asserts nothing.
 *
 *   npm run bench -w services/accounts            # N=300
 *   N=1000 DATABASE_URL=postgres://... npm run bench -w services/accounts
 */
import { randomBytes } from 'node:crypto';
import { generateLinkTokenKey, parseLinkTokenKey } from '@sitemail/contracts';
import { openDatabase } from '@sitemail/db';
import { createEventStore } from '@sitemail/event-store';
import { staticSiteConfig } from '@sitemail/site-config';
import Fastify from 'fastify';
import { accountsApp } from '../src/app.ts';
import { DEFAULT_SCRYPT_COST, hashPassword } from '../src/application/passwords.ts';
import { prepareAccountsDatabase } from '../src/store/prepare.ts';

const N = Number(process.env.N ?? 300);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 8);
const PASSWORD = 'correct horse battery staple';

let peakRss = 0;
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
const summary = (label: string, latencies: number[], wallMs: number) => {
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    `${label.padEnd(58)} ${String(latencies.length).padStart(5)} commands  ${(latencies.length / (wallMs / 1000)).toFixed(0).padStart(5)}/s  ` +
      `p50 ${pct(sorted, 50).toFixed(1)} ms  p99 ${pct(sorted, 99).toFixed(1)} ms`,
  );
};

async function timed(count: number, concurrency: number, fn: (i: number) => Promise<void>) {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t = performance.now();
        await fn(i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, wallMs: performance.now() - start };
}

async function main() {
  const url = process.env.DATABASE_URL;
  const schema = `bench_accounts_${randomBytes(4).toString('hex')}`;
  const db = await openDatabase(url ? { url, schema } : { schema });
  await prepareAccountsDatabase(db);
  const siteConfig = staticSiteConfig({
    externalURL: 'https://sourcegraph.example.com',
    'email.address': 'from@example.com',
    'email.smtp': { authentication: 'none', host: '127.0.0.1', port: 2525, noVerifyTLS: false },
    'auth.providers': [{ type: 'builtin' }],
  });
  const app = Fastify({ logger: false });
  await app.register(accountsApp, {
    db,
    eventStore: createEventStore(db),
    siteConfig,
    linkTokenKey: parseLinkTokenKey(generateLinkTokenKey('bench')),
    rateLimits: {
      signUp: { max: 1e9, timeWindow: 60_000 },
      login: { max: 1e9, timeWindow: 60_000 },
      emailRequests: { max: 1e9, timeWindow: 60_000 },
    },
  });
  await app.ready();
  console.log(`accounts commands, ${url ? 'Postgres' : 'PGlite'}, N=${N}, concurrency ${CONCURRENCY}`);

  const hashes = await timed(5, 1, async () => {
    await hashPassword(PASSWORD, DEFAULT_SCRYPT_COST);
  });
  summary(
    `scrypt hash (N=${DEFAULT_SCRYPT_COST.N}, r=${DEFAULT_SCRYPT_COST.r}, p=${DEFAULT_SCRYPT_COST.p})`,
    hashes.latencies,
    hashes.wallMs,
  );

  const admin = await app.inject({
    method: 'POST',
    url: '/sign-up',
    payload: { username: 'admin', email: 'admin@example.com', password: PASSWORD },
  });
  const key = await app.inject({
    method: 'POST',
    url: '/users/me/api-keys',
    headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
    payload: { name: 'bench' },
  });
  const auth = { authorization: `token ${key.json().secret}` };
  if (admin.statusCode !== 201 || key.statusCode !== 201) throw new Error('bench setup failed');

  const expect = (status: number, res: { statusCode: number; body: string }) => {
    if (res.statusCode !== status) throw new Error(`expected ${status}, got ${res.statusCode}: ${res.body}`);
  };

  for (const [label, concurrency] of [
    ['create user, admin UI flow (2 events, sealed link), sequential', 1],
    [`create user, admin UI flow, ${CONCURRENCY} at once`, CONCURRENCY],
  ] as const) {
    const tag = randomBytes(3).toString('hex');
    const r = await timed(N, concurrency, async (i) => {
      expect(
        201,
        await app.inject({
          method: 'POST',
          url: '/users',
          headers: auth,
          payload: { username: `u${tag}${i}`, email: `u${tag}${i}@example.com` },
        }),
      );
    });
    summary(label, r.latencies, r.wallMs);
  }

  const reads = await timed(N, CONCURRENCY, async () => {
    expect(200, await app.inject({ method: 'GET', url: '/users/me', headers: auth }));
  });
  summary(
    `read the current user (key auth + read model), ${CONCURRENCY} at once`,
    reads.latencies,
    reads.wallMs,
  );

  // One user's stream grows by 2 events per round: the command replays the whole stream each time.
  const rounds = await timed(N, 1, async (i) => {
    const created = await app.inject({
      method: 'POST',
      url: '/users/me/api-keys',
      headers: auth,
      payload: { name: `k${i}` },
    });
    expect(201, created);
    expect(
      204,
      await app.inject({
        method: 'DELETE',
        url: `/users/me/api-keys/${created.json().key.id}`,
        headers: auth,
      }),
    );
  });
  const first = rounds.latencies.slice(0, 50);
  const last = rounds.latencies.slice(-50);
  summary('create + revoke a key on one user (figures per round of 2)', rounds.latencies, rounds.wallMs);
  summary(
    `  first 50 rounds (stream at ~${4}-${100} events)`,
    first,
    first.reduce((a, b) => a + b, 0),
  );
  summary(
    `  last 50 rounds (stream at ~${2 * N - 100}-${2 * N} events)`,
    last,
    last.reduce((a, b) => a + b, 0),
  );

  clearInterval(sampler);
  console.log(`peak RSS ${(peakRss / 1024 / 1024).toFixed(0)} MiB`);
  await app.close();
  await db.query(`DROP SCHEMA ${schema} CASCADE`).catch(() => {});
  await db.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
