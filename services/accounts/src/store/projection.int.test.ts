import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabase, testDatabaseKind } from '@sitemail/testkit';
import { type Harness, linkCode, PASSWORD, smtpSite, startHarness, userWithKey } from '../testing/harness.ts';
import { prepareAccountsDatabase } from './prepare.ts';
import { createProjection } from './projection.ts';

const tables = {
  users: 'SELECT * FROM users ORDER BY id',
  user_emails: 'SELECT * FROM user_emails ORDER BY email',
  api_keys: 'SELECT * FROM api_keys ORDER BY id',
  invitations: 'SELECT * FROM invitations ORDER BY id',
  link_tokens:
    'SELECT token_sha256, kind, user_id, email, invitation_id, created_at, expires_at FROM link_tokens ORDER BY 1',
};

/**
 * The read models are nothing but the fold of the events: replaying every stream, in commit order,
 * into an empty schema gives the same rows the service built request by request.
 */
describe(`read models are a projection of the events (${testDatabaseKind()})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ site: smtpSite });
    const admin = await userWithKey(h, 'admin');
    const alice = await userWithKey(h, 'alice');
    const inject = (
      method: 'POST' | 'PUT' | 'DELETE',
      url: string,
      headers: Record<string, string>,
      payload?: object,
    ) => h.app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
    await inject('POST', '/users/me/emails', alice.auth, { email: 'alice@work.example' });
    const code = await linkCode(h, alice.id, 'EmailVerificationRequested');
    await h.app.inject({
      method: 'GET',
      url: `/-/verify-email?code=${encodeURIComponent(code)}&email=alice%40work.example`,
    });
    await inject('PUT', '/users/me/primary-email', alice.auth, { email: 'alice@work.example' });
    await inject('POST', '/users/me/emails', alice.auth, { email: 'alice@old.example' });
    await inject('DELETE', '/users/me/emails/alice@old.example', alice.auth);
    const key = await inject('POST', '/users/me/api-keys', alice.auth, { name: 'temp' });
    await inject('DELETE', `/users/me/api-keys/${key.json().key.id}`, alice.auth);
    await inject('PUT', `/users/${alice.id}/site-admin`, admin.auth, { siteAdmin: true });
    await inject('PUT', `/users/${admin.id}/emails/admin@example.com/verified`, alice.auth, {
      verified: true,
    });
    await inject('POST', '/invitations', alice.auth, { email: 'carol@example.org', organization: 'acme' });
    const invitation = await linkCode(h, alice.id, 'UserInvited');
    const carol = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: {
        username: 'carol',
        email: 'carol@example.org',
        password: PASSWORD,
        invitationCode: invitation,
      },
    });
    assert.equal(carol.statusCode, 201);
    await inject('POST', '/users', admin.auth, { username: 'dave', email: 'dave@example.com' });
    await inject('PUT', '/external-accounts/github/7', admin.auth, {
      username: 'octo',
      email: 'octo@example.com',
    });
  });
  after(() => h.close());

  it('replaying every event into an empty schema rebuilds the same rows', async () => {
    const replica = await testDatabase('accounts_replay');
    try {
      await prepareAccountsDatabase(replica);
      const streams = await h.db.query<{ stream_id: string }>(
        'SELECT stream_id FROM events GROUP BY stream_id ORDER BY min(seq)',
      );
      const project = createProjection(h.linkTokenKey);
      const all = (await Promise.all(streams.rows.map((s) => h.eventStore.readStream(s.stream_id)))).flat();
      const { rows: order } = await h.db.query<{ event_id: string }>(
        'SELECT event_id FROM events ORDER BY seq',
      );
      const byId = new Map(all.map((e) => [e.id, e]));
      assert.ok(order.length > 20, `a varied history (${order.length} events)`);
      await replica.transaction(async (tx) => {
        for (const { event_id } of order) await project(tx, [byId.get(event_id)!]);
      });
      for (const [table, sql] of Object.entries(tables)) {
        const live = await h.db.query(sql);
        const rebuilt = await replica.query(sql);
        assert.ok(live.rowCount > 0, `${table} has rows`);
        assert.deepEqual(rebuilt.rows, live.rows, table);
      }
    } finally {
      await replica.close();
    }
  });
});
