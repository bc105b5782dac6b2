import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { migrate } from '@sitemail/db';
import { testDatabase, testDatabaseKind } from './db.ts';

describe(`test database (${testDatabaseKind()})`, () => {
  const opened: Awaited<ReturnType<typeof testDatabase>>[] = [];
  after(async () => {
    for (const db of opened) await db.close();
  });

  it('isolates tests by schema and applies migrations once', async () => {
    const a = await testDatabase('iso');
    const b = await testDatabase('iso');
    opened.push(a, b);
    const migrations = [
      { id: '001', sql: 'CREATE TABLE things (id int PRIMARY KEY);\nINSERT INTO things VALUES (1);' },
    ];
    assert.deepEqual(await migrate(a, 'kit', migrations), ['001']);
    assert.deepEqual(await migrate(a, 'kit', migrations), []);
    await migrate(b, 'kit', migrations);
    await a.query('INSERT INTO things VALUES (2)');
    assert.equal((await a.query('SELECT * FROM things')).rowCount, 2);
    assert.equal((await b.query('SELECT * FROM things')).rowCount, 1);
  });

  it('rolls a failed transaction back whole', async () => {
    const db = await testDatabase('tx');
    opened.push(db);
    await db.query('CREATE TABLE t (id int PRIMARY KEY)');
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES (1)');
        await tx.query('INSERT INTO t VALUES (1)');
      }),
      /duplicate key/,
    );
    assert.equal((await db.query('SELECT * FROM t')).rowCount, 0);
  });
});
