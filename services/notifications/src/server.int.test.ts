import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const server = join(import.meta.dirname, 'server.ts');

function run(env: Record<string, string>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'notifications-server-'));
  try {
    const { DATABASE_URL: _db, KAFKA_BROKERS: _k, LINK_TOKEN_KEY: _l, ...base } = process.env;
    return spawnSync(process.execPath, ['--import', 'tsx', server], {
      env: { ...base, DATA_DIR: dataDir, ...env },
      encoding: 'utf8',
      timeout: 60_000,
    });
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('server.ts configuration errors', () => {
  it('refuses to start with Kafka but no LINK_TOKEN_KEY, saying which variable', () => {
    const r = run({ KAFKA_BROKERS: '127.0.0.1:1' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /LINK_TOKEN_KEY is required with KAFKA_BROKERS/);
  });

  it('refuses a malformed LINK_TOKEN_KEY without echoing it', () => {
    const r = run({ LINK_TOKEN_KEY: 'k1:c2hvcnQ=' });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /LINK_TOKEN_KEY must hold 32 bytes/);
    assert.doesNotMatch(r.stderr, /c2hvcnQ=/);
  });

  it('refuses a PORT that is not a port number', () => {
    const r = run({ PORT: 'eighty', LINK_TOKEN_KEY: `k1:${Buffer.alloc(32, 3).toString('base64')}` });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PORT must be a port number from 0 to 65535, not "eighty"/);
  });
});
