import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { generateLinkTokenKey } from '@sitemail/contracts';
import { loadLinkTokenKey } from './link-token-key.ts';

describe('loadLinkTokenKey', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'link-key-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));

  it('uses LINK_TOKEN_KEY when set', () => {
    const value = generateLinkTokenKey('given');
    assert.equal(loadLinkTokenKey({ value, withKafka: true, dataDir }).kid, 'given');
  });

  it('refuses to invent a key with Kafka, where the other service could not open the tokens', () => {
    assert.throws(
      () => loadLinkTokenKey({ value: undefined, withKafka: true, dataDir }),
      /LINK_TOKEN_KEY is required/,
    );
    assert.throws(
      () => loadLinkTokenKey({ value: '', withKafka: true, dataDir }),
      /LINK_TOKEN_KEY is required/,
    );
  });

  it('generates one key in embedded mode, private to the owner, and keeps it across restarts', () => {
    const first = loadLinkTokenKey({ value: undefined, withKafka: false, dataDir });
    const second = loadLinkTokenKey({ value: undefined, withKafka: false, dataDir });
    assert.equal(second.kid, first.kid);
    assert.ok(second.key.equals(first.key));
    assert.equal(statSync(join(dataDir, 'link-token.key')).mode & 0o777, 0o600);
    assert.ok(readFileSync(join(dataDir, 'link-token.key'), 'utf8').startsWith(`${first.kid}:`));
  });

  describe('the example key of .env.example', () => {
    const envExample = readFileSync(resolve(import.meta.dirname, '../../../.env.example'), 'utf8');
    const example = /^LINK_TOKEN_KEY=(.+)$/m.exec(envExample)?.[1];

    it('is refused, saying how to make a real one', () => {
      assert.ok(example, '.env.example sets LINK_TOKEN_KEY');
      assert.throws(
        () => loadLinkTokenKey({ value: example, withKafka: true, dataDir }),
        /LINK_TOKEN_KEY is the example value from \.env\.example: generate your own with `npm run link-token-key`/,
      );
    });

    it('is refused under another key id too, since the secret is the 32 bytes', () => {
      const bytes = example?.slice(example.indexOf(':') + 1);
      assert.throws(
        () => loadLinkTokenKey({ value: `prod-2026:${bytes}`, withKafka: false, dataDir }),
        /example value/,
      );
    });

    it('is refused when someone put it into the embedded key file', () => {
      const dir = mkdtempSync(join(tmpdir(), 'link-key-example-'));
      try {
        writeFileSync(join(dir, 'link-token.key'), `${example}\n`);
        assert.throws(
          () => loadLinkTokenKey({ value: undefined, withKafka: false, dataDir: dir }),
          /example value/,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
