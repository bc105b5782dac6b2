import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { templateDir } from './embedded.ts';
import { DataDirInUseError, openDatabase } from './index.ts';

/** The embedded database of `npm start`: one PGlite per data directory, a schema per service. */
describe('embedded database (PGlite in a data directory)', () => {
  const root = mkdtempSync(join(tmpdir(), 'db-embedded-'));
  const dataDir = join(root, 'pglite');
  after(() => rmSync(root, { recursive: true, force: true }));

  it('shares one instance between the schemas of a process, locked to it, released by the last close', async () => {
    const accounts = await openDatabase({ dataDir, schema: 'accounts' });
    const notifications = await openDatabase({ dataDir, schema: 'notifications' });
    assert.equal(readFileSync(`${dataDir}.lock`, 'utf8'), String(process.pid));
    await accounts.query('CREATE TABLE things (name text)');
    await accounts.query("INSERT INTO things VALUES ('a')");
    await notifications.query('CREATE TABLE things (name text)');
    assert.equal((await notifications.query('SELECT * FROM things')).rows.length, 0);
    // One instance: a schema qualified by name is visible from the other handle.
    assert.equal((await notifications.query('SELECT * FROM accounts.things')).rows.length, 1);
    await accounts.close();
    assert.equal((await notifications.query('SELECT count(*)::int AS n FROM things')).rows.length, 1);
    await notifications.close();
    assert.equal(existsSync(`${dataDir}.lock`), false);
  });

  it('makes a new data directory as a copy of a template made by the first initdb, not by another initdb', async () => {
    // The first test's directory ran initdb (or copied a template an earlier run left): either way
    // the template exists now. A file put in it shows that the next new directory is its copy.
    const template = templateDir();
    assert.ok(template && existsSync(join(template, 'PG_VERSION')), `template in ${template}`);
    const marker = join(template, 'copied-by-the-test');
    writeFileSync(marker, 'x');
    try {
      const fresh = join(root, 'fresh');
      const db = await openDatabase({ dataDir: fresh, schema: 'accounts' });
      assert.equal(existsSync(join(fresh, 'copied-by-the-test')), true);
      assert.deepEqual((await db.query<{ n: number }>('SELECT 1 AS n')).rows, [{ n: 1 }]);
      await db.close();
    } finally {
      rmSync(marker, { force: true });
    }
  });

  it('refuses a directory another live process holds, naming it and what to do', async () => {
    // The test runner that started this file: alive, and not this process.
    writeFileSync(`${dataDir}.lock`, String(process.ppid));
    await assert.rejects(
      openDatabase({ dataDir, schema: 'accounts' }),
      (err: unknown) =>
        err instanceof DataDirInUseError &&
        err.message.includes(`in use by process ${process.ppid}`) &&
        /DATABASE_URL/.test(err.message) &&
        /DATA_DIR/.test(err.message),
    );
    rmSync(`${dataDir}.lock`);
  });

  it('takes over the lock of a process that is gone', async () => {
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    writeFileSync(`${dataDir}.lock`, gone.stdout.trim());
    const db = await openDatabase({ dataDir, schema: 'accounts' });
    assert.equal((await db.query('SELECT name FROM things')).rows.length, 1);
    await db.close();
  });

  it("uses an older version's per-service directory as it is (schema public), with a warning saying how to switch", async () => {
    // An older layout: this service's own PGlite with its tables in public (the directory of the
    // tests above stands in for it: creating another costs an initdb).
    const legacy = dataDir;
    const old = await openDatabase({ dataDir: legacy });
    await old.query('CREATE TABLE users (name text)');
    await old.query("INSERT INTO users VALUES ('alice')");
    await old.close();
    const warnings: string[] = [];
    const db = await openDatabase({
      dataDir: join(root, 'new-pglite'),
      schema: 'accounts',
      legacyDataDir: legacy,
      warn: (m) => warnings.push(m),
    });
    assert.equal(db.schema, 'public');
    assert.deepEqual((await db.query('SELECT name FROM users')).rows, [{ name: 'alice' }]);
    await db.close();
    assert.equal(existsSync(join(root, 'new-pglite')), false, 'the new directory is not created');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', new RegExp(`delete ${legacy}`));
  });
});
