import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { metricValue, parseMetrics } from '@sitemail/service-kit';
import { type TestDatabase, testDatabase, testDatabaseKind } from '@sitemail/testkit';
import Fastify from 'fastify';
import { runRetention } from '../application/retention.ts';
import { accountsMetricsPlugin } from '../metrics.ts';
import { retentionPlugin } from '../retention.ts';
import { prepareAccountsDatabase } from './prepare.ts';

const now = new Date('2026-12-01T12:00:00.000Z');
const at = (ms: number) => new Date(now.getTime() + ms).toISOString();

describe(`retention of expired link tokens (${testDatabaseKind()})`, () => {
  let db: TestDatabase;
  before(async () => {
    db = await testDatabase('accounts_retention');
    await prepareAccountsDatabase(db);
  });
  after(() => db.close());
  beforeEach(() => db.query('DELETE FROM link_tokens'));

  const token = async (
    name: string,
    expiresInMs: number,
    extra: { kind?: string; used?: boolean; revoked?: boolean } = {},
  ) => {
    await db.query(
      `INSERT INTO link_tokens (token_sha256, kind, user_id, email, created_at, expires_at, used_at, revoked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        name,
        extra.kind ?? 'EmailVerificationRequested',
        randomUUID(),
        `${name}@example.com`,
        at(-86_400_000 * 8),
        at(expiresInMs),
        extra.used ? at(-60_000) : null,
        extra.revoked ? at(-60_000) : null,
      ],
    );
  };
  const left = async () =>
    (await db.query<{ token_sha256: string }>('SELECT token_sha256 FROM link_tokens ORDER BY 1')).rows.map(
      (r) => r.token_sha256,
    );

  it('removes exactly the expired tokens, keeping an accepted invitation; logs counts by kind', async () => {
    await token('expired-long-ago', -86_400_000);
    await token('expired-just-now', 0);
    await token('expires-in-1ms', 1);
    await token('valid-for-a-day', 86_400_000);
    await token('expired-used-reset', -1, { kind: 'PasswordResetRequested', used: true });
    await token('expired-revoked', -1, { revoked: true });
    await token('expired-unused-invitation', -1, { kind: 'UserInvited' });
    await token('expired-accepted-invitation', -1, { kind: 'UserInvited', used: true });
    const reported: object[] = [];
    const result = await runRetention({ db, clock: () => now, onPurged: (r) => reported.push(r) });
    assert.deepEqual(result, {
      linkTokens: 5,
      byKind: { EmailVerificationRequested: 3, PasswordResetRequested: 1, UserInvited: 1 },
    });
    assert.deepEqual([...reported], [result]);
    assert.deepEqual(await left(), ['expired-accepted-invitation', 'expires-in-1ms', 'valid-for-a-day']);
    // Nothing left to do: a second run removes nothing and reports nothing.
    assert.deepEqual(await runRetention({ db, clock: () => now, onPurged: (r) => reported.push(r) }), {
      linkTokens: 0,
      byKind: {},
    });
    assert.equal(reported.length, 1);
  });

  it('works in small batches: a run does at most maxBatches of batchSize, the next one the rest', async () => {
    for (let i = 0; i < 7; i++) await token(`old-${i}`, -1000 * (i + 1));
    await token('fresh', 1000);
    const first = await runRetention({ db, clock: () => now, batchSize: 2, maxBatches: 2 });
    assert.equal(first.linkTokens, 4);
    assert.equal((await left()).length, 4);
    const second = await runRetention({ db, clock: () => now, batchSize: 2, maxBatches: 10 });
    assert.equal(second.linkTokens, 3);
    assert.deepEqual(await left(), ['fresh']);
  });

  it('several instances at once remove each expired row once, and together all of them', async () => {
    for (let i = 0; i < 40; i++) await token(`old-${i}`, -1000 - i);
    for (let i = 0; i < 5; i++) await token(`fresh-${i}`, 1000 + i);
    const runs = await Promise.all(
      [1, 2, 3].map(() => runRetention({ db, clock: () => now, batchSize: 5, maxBatches: 100 })),
    );
    assert.equal(
      runs.reduce((n, r) => n + r.linkTokens, 0),
      40,
    );
    assert.equal((await left()).length, 5);
  });

  it('the running service purges at start and counts it in accounts_retention_purged_total{kind}', async () => {
    // The plugin runs on the real clock: these tokens expired an hour ago, this one in an hour.
    const hour = 3_600_000;
    for (const [name, expires] of [
      ['gone-1', -hour],
      ['gone-2', -hour],
      ['kept', hour],
    ] as const) {
      await db.query(
        `INSERT INTO link_tokens (token_sha256, kind, user_id, email, created_at, expires_at)
         VALUES ($1, 'EmailVerificationRequested', $2, $3, $4, $5)`,
        [
          name,
          randomUUID(),
          `${name}@example.com`,
          new Date(Date.now() - 8 * 24 * hour),
          new Date(Date.now() + expires),
        ],
      );
    }
    const app = Fastify();
    await app.register(accountsMetricsPlugin, { db });
    await app.register(retentionPlugin, { db });
    await app.ready();
    try {
      let purged: number | undefined;
      for (let i = 0; i < 100 && purged !== 2; i++) {
        const text = (await app.inject({ url: '/metrics' })).body;
        purged = metricValue(parseMetrics(text), 'accounts_retention_purged_total', {
          kind: 'EmailVerificationRequested',
        });
        if (purged !== 2) await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(purged, 2);
      assert.deepEqual(await left(), ['kept']);
    } finally {
      await app.close();
    }
  });
});
