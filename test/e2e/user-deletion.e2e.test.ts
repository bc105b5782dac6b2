/**
 * End to end, deleting a user for real (issue 13): both services as processes over the Kafka mock
 * cluster. A user with two addresses, two API keys and the emails they caused is deleted by a site
 * admin; afterwards the key gets 401 on both services, notifications' delivery log keeps the emails
 * without their addresses, the address signs up again, and (with DATABASE_URL, where the test can
 * read both services' tables beside the running processes) no table, outbox row or event payload
 * of either service holds the addresses or the username, and replaying the topic from offset 0
 * into an empty notifications database gives the same recipients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { prepareAccountsDatabase, readModelQueries, rebuildReadModels } from '@sitemail/accounts';
import { decode, parseLinkTokenKey, topics } from '@sitemail/contracts';
import { type Database, migrate, openDatabase } from '@sitemail/db';
import { handleEvent, migrations } from '@sitemail/notifications';
import { readTopic, testDatabase } from '@sitemail/testkit';
import { Kafka, logLevel } from 'kafkajs';
import {
  Accounts,
  basic,
  bootstrapAdmin,
  call,
  expectStatus,
  linkIn,
  Notifications,
  newPerson,
  token,
} from './client.ts';
import { eventually, type Stack, startStack } from './stack.ts';

let stack: Stack;
let accounts: Accounts;
let notifications: Notifications;
let admin: Awaited<ReturnType<typeof bootstrapAdmin>>;

before(async () => {
  stack = await startStack({ label: 'deletion' });
  accounts = new Accounts(stack.accounts.url, stack.secrets);
  notifications = new Notifications(stack.notifications.url, () => admin.auth);
  admin = await bootstrapAdmin(accounts, stack.notifications.url);
});

after(async () => {
  await stack?.stop();
});

/** Every row of every table of every schema of the stack's database, as text. */
async function everyRow(url: string): Promise<{ table: string; row: string }[]> {
  const db = await openDatabase({ url, maxConnections: 1 });
  try {
    const { rows: tables } = await db.query<{ s: string; t: string }>(
      `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
       WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    const out: { table: string; row: string }[] = [];
    for (const { s, t } of tables) {
      const { rows } = await db.query<{ r: string }>(`SELECT x::text AS r FROM "${s}"."${t}" x`);
      for (const r of rows) out.push({ table: `${s}.${t}`, row: r.r });
    }
    return out;
  } finally {
    await db.close();
  }
}

describe('end to end: deleting a user erases them in both services', () => {
  const p = newPerson('erased');
  const second = `second-${p.email}`;
  let userId: string;
  let keys: string[] = [];

  before(async () => {
    const user = await accounts.signUp(p);
    userId = user.id;
    const mail = await stack.mailbox.waitFor(p.email, /^Verify your email on/);
    expectStatus(
      await accounts.follow(linkIn(mail, `${stack.siteConfig.externalURL}/-/verify-email`)),
      200,
      'verify',
    );
    // A password only creates keys; the rest goes with a key.
    const auth = basic(p.username, p.password);
    keys = [
      (await accounts.createKey(userId, auth, 'laptop')).secret,
      (await accounts.createKey(userId, auth, 'ci')).secret,
    ];
    await accounts.addEmail(userId, second, token(keys[0]!));
    await stack.mailbox.waitFor(second, /^Verify your email on/);
    await eventually('notifications to know both keys', async () => {
      const replies = await Promise.all(
        keys.map((k) => call(stack.notifications.url, 'GET', '/deliveries', { auth: token(k) })),
      );
      // Not a site admin: 403 (authenticated) rather than 401.
      return replies.every((r) => r.status === 403) ? true : undefined;
    });
    const settled = await notifications.settled({ userId });
    assert.ok(settled.length >= 4, `the user's emails are in the log: ${settled.length}`);
  });

  it('a site admin deletes the user: 204; their keys get 401 on both services', async () => {
    expectStatus(
      await call(stack.accounts.url, 'DELETE', `/users/${userId}`, { auth: admin.auth }),
      204,
      'delete the user',
    );
    for (const k of keys) {
      expectStatus(
        await call(stack.accounts.url, 'GET', `/users/${userId}`, { auth: token(k) }),
        401,
        'accounts',
      );
    }
    await eventually('notifications to refuse the keys', async () => {
      const replies = await Promise.all(
        keys.map((k) => call(stack.notifications.url, 'GET', '/deliveries', { auth: token(k) })),
      );
      return replies.every((r) => r.status === 401) ? true : undefined;
    });
  });

  it("notifications' log keeps the emails and their status, without any address", async () => {
    const log = await eventually('the log to be erased', async () => {
      const ds = await notifications.deliveries({ userId });
      return ds.length > 0 && ds.every((d) => d.recipientAddress === null) ? ds : undefined;
    });
    assert.ok(log.filter((d) => d.status === 'sent').length >= 3, JSON.stringify(log.map((d) => d.status)));
    assert.deepEqual(await notifications.deliveries({ address: p.email }), []);
    assert.deepEqual(await notifications.deliveries({ address: second }), []);
  });

  if (process.env.DATABASE_URL) {
    it('no table of either service, outbox row or readable event payload holds the addresses or the username', async () => {
      const needles = [p.email, second, p.username].map((s) => s.toLowerCase());
      const rows = await everyRow(stack.postgresUrl!);
      // The scan reads both services' tables: the admin, not deleted, is in both.
      const adminIn = new Set(
        rows.filter(({ row }) => row.toLowerCase().includes(admin.email)).map((r) => r.table.split('.')[0]),
      );
      assert.ok(adminIn.size >= 2, `the admin's address is found in ${[...adminIn].join(', ')}`);
      const found = rows.filter(({ row }) => needles.some((n) => row.toLowerCase().includes(n)));
      assert.deepEqual(found, []);
    });
  }

  it('the address and the username sign up again', async () => {
    const again = await accounts.signUp(p);
    assert.notEqual(again.id, userId);
  });

  if (process.env.DATABASE_URL) {
    it('replaying the topic from offset 0 into an empty notifications database gives the same recipients', async () => {
      const admin = new Kafka({ brokers: stack.kafka.brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(topics.accountsEvents);
      await admin.disconnect();
      const count = offsets.reduce((n, o) => n + Number(o.high), 0);
      const messages = await readTopic(stack.kafka.brokers, topics.accountsEvents, { count });
      const live = await openDatabase({
        url: stack.postgresUrl!,
        schema: 'notifications',
        maxConnections: 1,
      });
      const replica: Database = await testDatabase('e2e_notifications_replay');
      try {
        await migrate(replica, 'notifications', migrations);
        const site = { externalURL: 'https://rebuild.example', 'auth.providers': [{ type: 'builtin' }] };
        for (const m of messages) {
          await handleEvent(replica, decode(topics.accountsEvents, m.value), site, new Date());
        }
        const sql = {
          recipients: 'SELECT user_id, position, state FROM recipients ORDER BY user_id',
          keys: 'SELECT secret_sha256, key_id, user_id, revoked FROM recipient_api_keys ORDER BY 1',
        };
        // The live service may still be handling the last sign-up.
        await eventually('the live projection to match the replay', async () => {
          const same =
            JSON.stringify((await live.query(sql.recipients)).rows) ===
              JSON.stringify((await replica.query(sql.recipients)).rows) &&
            JSON.stringify((await live.query(sql.keys)).rows) ===
              JSON.stringify((await replica.query(sql.keys)).rows);
          return same ? true : undefined;
        });
        const { rows } = await replica.query<{ state: { deleted?: boolean; addresses: unknown[] } }>(
          'SELECT state FROM recipients WHERE user_id = $1',
          [userId],
        );
        assert.equal(rows[0]?.state.deleted, true);
        assert.deepEqual(rows[0]?.state.addresses, []);
      } finally {
        await replica.close();
        await live.close();
      }
    });
  }

  if (process.env.DATABASE_URL) {
    it("replaying accounts' event log into empty read models gives the same rows, the user deleted", async () => {
      const live = await openDatabase({ url: stack.postgresUrl!, schema: 'accounts', maxConnections: 1 });
      const replica: Database = await testDatabase('e2e_accounts_replay');
      try {
        await prepareAccountsDatabase(replica);
        const { events } = await rebuildReadModels(live, replica, parseLinkTokenKey(stack.linkTokenKey));
        assert.ok(events > 0, 'the log has events');
        for (const [table, sql] of Object.entries(readModelQueries)) {
          assert.deepEqual((await replica.query(sql)).rows, (await live.query(sql)).rows, table);
        }
        const { rows } = await replica.query<{ deleted_at: unknown; username: unknown }>(
          'SELECT deleted_at, username FROM users WHERE id = $1',
          [userId],
        );
        assert.ok(rows[0]?.deleted_at, 'the rebuilt user is deleted');
        assert.equal(rows[0]?.username, null);
      } finally {
        await replica.close();
        await live.close();
      }
    });
  }
});
