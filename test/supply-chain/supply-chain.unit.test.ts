/**
 * What `npm ci` installs is part of what the product ships: the Node versions `engines` promises
 * must run every production dependency, and no install may phone home.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const root = join(import.meta.dirname, '../..');
const require = createRequire(import.meta.url);
const semver = require('semver') as {
  satisfies(version: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  engines?: { node?: string } | string[];
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, LockEntry>;
};
const production = Object.entries(lock.packages).filter(
  ([path, entry]) => path.includes('node_modules/') && !entry.dev && !entry.devOptional,
);

describe('supply chain', () => {
  it('every production dependency runs on the oldest and newest Node that engines allows', () => {
    const supported = pkg.engines.node as string;
    const oldest = semver.minVersion(supported)?.version;
    assert.ok(oldest, `engines.node "${supported}" has no minimum`);
    const newestMajor = '22.0.0';
    assert.ok(semver.satisfies(newestMajor, supported), `engines.node "${supported}" should admit Node 22`);
    const refused = production
      .filter(([, e]) => e.engines && !Array.isArray(e.engines) && typeof e.engines.node === 'string')
      .filter(([, e]) => {
        const range = (e.engines as { node: string }).node;
        return !semver.satisfies(oldest, range) || !semver.satisfies(newestMajor, range);
      })
      .map(([path, e]) => `${path}@${e.version} needs node ${(e.engines as { node: string }).node}`);
    assert.deepEqual(refused, [], `engines.node is "${supported}" but:\n${refused.join('\n')}`);
  });

  it('no install script reports telemetry (scarf is denied and switched off)', () => {
    assert.equal(pkg.allowScripts?.['@scarf/scarf'], false, 'npm 11: allowScripts denies @scarf/scarf');
    // npm before 11 (the node:20 image's npm 10) runs every script; scarf reads this setting itself.
    assert.equal(pkg.scarfSettings?.enabled, false, 'scarfSettings.enabled is false');
    const withScripts = production.filter(([path]) => path.endsWith('node_modules/@scarf/scarf'));
    assert.deepEqual(withScripts, [], 'scarf is not in the production tree (it comes with dev-only tools)');
  });

  it('docker-compose publishes ports on the loopback interface only', () => {
    const compose = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    const published = [...compose.matchAll(/^\s+-\s+"([^"]+)"\s*(#.*)?$/gm)]
      .map((m) => m[1] as string)
      .filter((p) => /^[\d.:]+$/.test(p) && p.split(':').length >= 2);
    assert.ok(published.length >= 5, `expected the published ports, found ${published.join(', ')}`);
    for (const port of published)
      assert.match(port, /^127\.0\.0\.1:\d+:\d+$/, `"${port}" must bind 127.0.0.1`);
  });
});
