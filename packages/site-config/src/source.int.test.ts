import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadSiteConfig, type SiteConfig, SiteConfigError, type SiteConfigLogger } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'site-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const newFile = (text: string) => {
  const file = join(dir, `site-config-${++n}.jsonc`);
  writeFileSync(file, text);
  return file;
};

const config = (externalURL: string, smtp?: object) =>
  `{\n  // written by the test\n  "externalURL": ${JSON.stringify(externalURL)},\n${
    smtp ? `  "email.smtp": ${JSON.stringify(smtp)},\n` : ''
  }}\n`;

/** A logger that records, so a test can wait for the rejection of an invalid change. */
function recordingLogger() {
  const lines: { level: string; obj: object; msg: string }[] = [];
  const waiters: { test: (l: (typeof lines)[number]) => boolean; resolve: () => void }[] = [];
  const push =
    (level: string) =>
    (obj: object, msg = '') => {
      const line = { level, obj, msg };
      lines.push(line);
      for (const w of [...waiters]) if (w.test(line)) w.resolve();
    };
  const logger: SiteConfigLogger = { info: push('info'), warn: push('warn'), error: push('error') };
  const waitFor = (test: (l: (typeof lines)[number]) => boolean) =>
    new Promise<void>((resolve) => {
      if (lines.some(test)) return resolve();
      waiters.push({ test, resolve });
    });
  return { logger, lines, waitFor };
}

const nextChange = (source: { onChange(l: (c: SiteConfig) => void): () => void }) =>
  new Promise<SiteConfig>((resolve) => {
    const off = source.onChange((c) => {
      off();
      resolve(c);
    });
  });

describe('loadSiteConfig through the file system', () => {
  it('throws on an invalid first read, naming the file, key and problem', () => {
    const file = newFile(config('https://a.example', { host: 'h', port: 0, authentication: 'none' }));
    assert.throws(
      () => loadSiteConfig(file),
      (err: unknown) =>
        err instanceof SiteConfigError &&
        err.message === `invalid site config (${file}): email.smtp.port: must be an integer from 1 to 65535`,
    );
    assert.throws(() => loadSiteConfig(join(dir, 'missing.jsonc')), /ENOENT/);
  });

  it('applies a valid change at once, rejects an invalid one and keeps the last good config', async () => {
    const file = newFile(config('https://a.example'));
    const { logger, lines, waitFor } = recordingLogger();
    const source = loadSiteConfig(file, { logger, debounceMs: 20, persistent: true });
    try {
      assert.equal(source.current().externalURL, 'https://a.example');

      const changed = nextChange(source);
      writeFileSync(
        file,
        config('https://b.example', { host: 'smtp.example', port: 587, username: 'u', password: 'pw' }),
      );
      const b = await changed;
      assert.equal(b.externalURL, 'https://b.example');
      assert.equal(source.current()['email.smtp']?.port, 587);

      let notified = 0;
      source.onChange(() => notified++);
      writeFileSync(
        file,
        config('https://c.example', {
          host: 'smtp.example',
          port: 70000,
          username: 'u',
          password: 'hunter2-secret',
        }),
      );
      await waitFor((l) => l.level === 'error');
      const rejection = lines.find((l) => l.level === 'error');
      assert.match(
        rejection?.msg ?? '',
        /email\.smtp\.port: must be an integer from 1 to 65535; keeping the last good config/,
      );
      assert.deepEqual((rejection?.obj as { issues?: unknown } | undefined)?.issues, [
        { key: 'email.smtp.port', message: 'must be an integer from 1 to 65535' },
      ]);
      assert.ok(!JSON.stringify(lines).includes('hunter2-secret'), 'the password never reaches the log');
      assert.equal(source.current().externalURL, 'https://b.example', 'the last good config stays in force');
      assert.equal(notified, 0);

      // A fix after a bad edit takes effect as usual.
      const fixed = nextChange(source);
      writeFileSync(file, config('https://d.example'));
      assert.equal((await fixed).externalURL, 'https://d.example');
      assert.equal(notified, 1);
    } finally {
      await source.close();
    }
  });

  it('an incomplete email.smtp.oauth2 is rejected naming the missing key; the last good XOAUTH2 config stays', async () => {
    const xoauth2 = (oauth2: object) => ({
      host: 'smtp.office365.com',
      port: 587,
      authentication: 'XOAUTH2',
      username: 'noreply@tenant.example',
      oauth2,
    });
    const good = {
      tokenURL: 'https://login.microsoftonline.com/tenant/oauth2/v2.0/token',
      clientID: 'app',
      clientSecret: 'cs-hunter2-oauth',
      grant: 'client_credentials',
    };
    const file = newFile(config('https://a.example', xoauth2(good)));
    const { logger, lines, waitFor } = recordingLogger();
    const source = loadSiteConfig(file, { logger, debounceMs: 20, persistent: true });
    try {
      const { clientID: _, ...noClientId } = good;
      writeFileSync(
        file,
        config('https://b.example', xoauth2({ ...noClientId, clientSecret: 'cs-new-secret' })),
      );
      await waitFor((l) => l.level === 'error');
      const rejection = lines.find((l) => l.level === 'error');
      assert.match(
        rejection?.msg ?? '',
        /email\.smtp\.oauth2\.clientID: is required; keeping the last good config/,
      );
      assert.ok(
        !JSON.stringify(lines).includes('cs-new-secret') && !JSON.stringify(lines).includes('cs-hunter2'),
      );
      assert.equal(source.current().externalURL, 'https://a.example');
      assert.equal(
        source.current()['email.smtp']?.oauth2?.clientID,
        'app',
        'the last good oauth2 stays in force',
      );
    } finally {
      await source.close();
    }
  });

  it('follows a file replaced by rename, as editors and config management do', async () => {
    const file = newFile(config('https://a.example'));
    const source = loadSiteConfig(file, { debounceMs: 20, persistent: true });
    try {
      for (const url of ['https://r1.example', 'https://r2.example']) {
        const changed = nextChange(source);
        const tmp = `${file}.tmp`;
        writeFileSync(tmp, config(url));
        renameSync(tmp, file);
        assert.equal((await changed).externalURL, url);
      }
    } finally {
      await source.close();
    }
  });

  it('keeps the last good config when the file disappears, and picks it up again', async () => {
    const file = newFile(config('https://a.example'));
    const { logger, waitFor } = recordingLogger();
    const source = loadSiteConfig(file, { logger, debounceMs: 20, persistent: true, pollIntervalMs: 50 });
    try {
      rmSync(file);
      await waitFor((l) => l.level === 'error' && l.msg.includes('cannot read'));
      assert.equal(source.current().externalURL, 'https://a.example');
      const changed = nextChange(source);
      writeFileSync(file, config('https://back.example'));
      assert.equal((await changed).externalURL, 'https://back.example');
    } finally {
      await source.close();
    }
  });

  it('stops notifying after close', async () => {
    const file = newFile(config('https://a.example'));
    const closed = loadSiteConfig(file, { debounceMs: 20, persistent: true, pollIntervalMs: 50 });
    const open = loadSiteConfig(file, { debounceMs: 20, persistent: true, pollIntervalMs: 50 });
    let notified = 0;
    closed.onChange(() => notified++);
    await closed.close();
    const changed = nextChange(open);
    writeFileSync(file, config('https://after-close.example'));
    await changed;
    // The open source saw the change; give the closed one a few more debounce periods to (wrongly) react.
    await new Promise((r) => setTimeout(r, 200));
    await open.close();
    assert.equal(notified, 0);
    assert.equal(closed.current().externalURL, 'https://a.example');
  });
});

describe("the repository's site config files", () => {
  it('config/site-config.jsonc (npm start) is valid and points at the development mail sink', () => {
    const source = loadSiteConfig(join(import.meta.dirname, '../../../config/site-config.jsonc'));
    const c = source.current();
    assert.equal(c.externalURL, 'http://localhost:3001');
    assert.equal(c['email.address'], 'noreply@sitemail.localhost');
    assert.equal(c['email.senderName'], 'Sitemail (development)');
    assert.deepEqual(c['email.smtp'], {
      host: '127.0.0.1',
      port: 2525,
      authentication: 'none',
      noVerifyTLS: false,
    });
    assert.deepEqual(
      c['auth.providers'].map((p) => p.type),
      ['builtin', 'github'],
    );
    return source.close();
  });
});

describe('the docker site config', () => {
  it('config/site-config.docker.jsonc is valid and sends to mailpit without authentication', async () => {
    const source = loadSiteConfig(join(import.meta.dirname, '../../../config/site-config.docker.jsonc'));
    const c = source.current();
    assert.equal(c.externalURL, 'http://localhost:3001');
    assert.deepEqual(c['email.smtp'], {
      host: 'mailpit',
      port: 1025,
      authentication: 'none',
      noVerifyTLS: false,
    });
    assert.ok(c['email.address']);
    await source.close();
  });
});
