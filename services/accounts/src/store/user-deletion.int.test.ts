import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { testDatabase, testDatabaseKind } from '@sitemail/testkit';
import {
  createKey,
  type Harness,
  linkCode,
  PASSWORD,
  smtpSite,
  startHarness,
  token,
  userWithKey,
} from '../testing/harness.ts';
import { everyRow } from '../testing/scan.ts';
import { isShredded } from './personal-data.ts';
import { prepareAccountsDatabase } from './prepare.ts';
import { readModelQueries, rebuildReadModels } from './rebuild.ts';

const containing = (rows: string[], needles: string[]) =>
  rows.filter((row) => needles.some((n) => row.toLowerCase().includes(n.toLowerCase())));

describe(`deleting a user for real (${testDatabaseKind()})`, () => {
  let h: Harness;
  let admin: Awaited<ReturnType<typeof userWithKey>>;
  let alice: { id: string; auth: { authorization: string }; secondKey: string };
  let bob: Awaited<ReturnType<typeof userWithKey>>;
  const personal = [
    'wonderalice',
    'Alice Liddell',
    'wonderalice@example.com',
    'alice.work@example.org',
    'carol.invited@example.net',
  ];
  let positionsBefore: number[] = [];

  before(async () => {
    h = await startHarness({ site: smtpSite });
    admin = await userWithKey(h, 'admin');
    const signUp = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: {
        username: 'wonderalice',
        email: 'wonderalice@example.com',
        password: PASSWORD,
        displayName: 'Alice Liddell',
      },
    });
    assert.equal(signUp.statusCode, 201, signUp.body);
    const id = signUp.json().id as string;
    const first = await createKey(h, 'wonderalice', 'laptop');
    const auth = { authorization: token(first.secret) };
    const second = await createKey(h, 'wonderalice', 'ci');
    const added = await h.app.inject({
      method: 'POST',
      url: '/users/me/emails',
      headers: auth,
      payload: { email: 'alice.work@example.org' },
    });
    assert.equal(added.statusCode, 201, added.body);
    const invited = await h.app.inject({
      method: 'POST',
      url: '/invitations',
      headers: auth,
      payload: { email: 'carol.invited@example.net', organization: 'acme' },
    });
    assert.equal(invited.statusCode, 201, invited.body);
    alice = { id, auth, secondKey: second.secret };
    bob = await userWithKey(h, 'bob');
    positionsBefore = (await h.eventStore.readStream(id)).map((e) => e.position);
  });
  after(() => h.close());

  it('at rest, the event log holds the personal fields sealed; the service reads them back', async () => {
    const { rows } = await h.db.query<{ data: string }>(
      'SELECT data::text AS data FROM events WHERE stream_id = $1',
      [alice.id],
    );
    assert.deepEqual(
      containing(
        rows.map((r) => r.data),
        personal,
      ),
      [],
    );
    const created = (await h.eventStore.readStream(alice.id))[0];
    assert.ok(created, 'the stream keeps its first event');
    assert.equal((created.data as { email: string }).email, 'wonderalice@example.com');
    assert.equal((created.data as { displayName: string }).displayName, 'Alice Liddell');
  });

  it('refuses a self-deletion without the password, or with a wrong one; another user is 403', async () => {
    const del = (payload: object, headers = alice.auth, url = '/users/me/delete') =>
      h.app.inject({ method: 'POST', url, headers, payload });
    const none = await del({});
    assert.equal(none.statusCode, 400, none.body);
    assert.equal(none.json().code, 'wrong-credential');
    assert.equal(none.json().field, 'password');
    const wrong = await del({ password: 'not the password at all' });
    assert.equal(wrong.statusCode, 400);
    assert.equal(wrong.json().detail, 'the password is wrong');
    assert.equal((await del({ password: PASSWORD }, bob.auth, `/users/${alice.id}/delete`)).statusCode, 403);
    const byUser = await h.app.inject({ method: 'DELETE', url: `/users/${alice.id}`, headers: bob.auth });
    assert.equal(byUser.statusCode, 403);
  });

  it('the last site admin cannot delete themself', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users/me/delete',
      headers: admin.auth,
      payload: { password: PASSWORD },
    });
    assert.equal(res.statusCode, 409, res.body);
    assert.equal(res.json().code, 'last-site-admin');
  });

  it('deletes the user: no table holds their data, their events stay unreadable, keys stop', async () => {
    const res = await h.app.inject({
      method: 'POST',
      url: '/users/me/delete',
      headers: alice.auth,
      payload: { password: PASSWORD },
    });
    assert.equal(res.statusCode, 200, res.body);

    assert.deepEqual(containing(await everyRow(h.db), personal), []);
    const events = await h.eventStore.readStream(alice.id);
    assert.deepEqual(
      events.map((e) => e.position),
      [...positionsBefore, positionsBefore.length + 1],
    );
    assert.equal(events.at(-1)?.type, 'UserDeleted');
    assert.deepEqual(events.at(-1)?.data, { deletedBy: 'self' });
    const withPersonal = events.filter((e) => !['PasswordChanged', 'UserDeleted'].includes(e.type));
    assert.ok(withPersonal.length >= 6, `${withPersonal.length} events with personal fields`);
    assert.ok(withPersonal.every(isShredded));
    assert.deepEqual(containing([JSON.stringify(events)], personal), []);

    for (const secret of [alice.auth.authorization, token(alice.secondKey)]) {
      const me = await h.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: secret } });
      assert.equal(me.statusCode, 401);
    }
    const read = await h.app.inject({ method: 'GET', url: `/users/${alice.id}`, headers: admin.auth });
    assert.equal(read.statusCode, 404);
    const { rows } = await h.db.query<{ deleted_at: Date | null; username: string | null }>(
      'SELECT deleted_at, username FROM users WHERE id = $1',
      [alice.id],
    );
    assert.ok(rows[0]?.deleted_at, 'the read model shows the user deleted');
    assert.equal(rows[0]?.username, null);
  });

  it('a second deletion is 410; the address and username sign up again', async () => {
    const again = await h.app.inject({ method: 'DELETE', url: `/users/${alice.id}`, headers: admin.auth });
    assert.equal(again.statusCode, 410, again.body);
    assert.equal(again.json().code, 'user-already-deleted');
    const signUp = await h.app.inject({
      method: 'POST',
      url: '/sign-up',
      payload: { username: 'wonderalice', email: 'wonderalice@example.com', password: PASSWORD },
    });
    assert.equal(signUp.statusCode, 201, signUp.body);
    assert.notEqual(signUp.json().id, alice.id);
    const code = await linkCode(h, signUp.json().id, 'EmailVerificationRequested');
    assert.ok(code.length > 20);
  });

  it('a site admin deletes another user (204); the site admin itself is refused on that route', async () => {
    const res = await h.app.inject({ method: 'DELETE', url: `/users/${bob.id}`, headers: admin.auth });
    assert.equal(res.statusCode, 204, res.body);
    const me = await h.app.inject({ method: 'GET', url: '/users/me', headers: bob.auth });
    assert.equal(me.statusCode, 401);
    const self = await h.app.inject({ method: 'DELETE', url: '/users/me', headers: admin.auth });
    assert.equal(self.statusCode, 403);
    assert.deepEqual((await h.eventStore.readStream(bob.id)).at(-1)?.data, { deletedBy: 'site-admin' });
  });

  it('rebuilding the read models from the event store gives the same rows, deleted users deleted', async () => {
    const replica = await testDatabase('accounts_shred_replay');
    try {
      await prepareAccountsDatabase(replica);
      await rebuildReadModels(h.db, replica, h.linkTokenKey);
      for (const [table, sql] of Object.entries(readModelQueries)) {
        const live = await h.db.query(sql);
        assert.deepEqual((await replica.query(sql)).rows, live.rows, table);
      }
      const tombstones = await replica.query('SELECT id FROM users WHERE deleted_at IS NOT NULL ORDER BY id');
      assert.deepEqual(
        tombstones.rows.map((r) => r.id),
        [alice.id, bob.id].sort(),
      );
    } finally {
      await replica.close();
    }
  });
});
