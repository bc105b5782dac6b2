#!/usr/bin/env node
// Runs every *.test.ts under the given folders (default: the whole repo) in one node:test run,
// so there is one summary. Node 20's --test takes no globs, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const skip = new Set(['node_modules', 'dist', '.turbo', '.data', '.git']);
const found = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    if (skip.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith('.test.ts')) found.push(path);
  }
};
for (const root of roots.length ? roots : ['.']) walk(resolve(root));
found.sort();
if (found.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
const filter = process.env.TEST_FILES ? new RegExp(process.env.TEST_FILES) : null;
const files = filter ? found.filter((f) => filter.test(f)) : found;
console.log(`running ${files.length} test files`);
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=180000', ...flags, ...files.map((f) => relative(process.cwd(), f))],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
