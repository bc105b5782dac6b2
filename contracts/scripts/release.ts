/**
 * `npm run release -w contracts -- v2`: snapshots the current JSON Schemas as a released contract
 * version in `released/<version>/`. The schema-evolution test then judges later changes against
 * the newest released version. Only release after a breaking change got a new topic version.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { contractsDir, schemaFiles } from './generate.ts';

const version = process.argv[2];
if (!version || !/^v[0-9]+$/.test(version)) {
  console.error('usage: npm run release -w contracts -- v<major>');
  process.exit(2);
}
const dir = join(contractsDir, 'released', version);
if (existsSync(dir)) {
  console.error(`${dir} exists: a released version is never rewritten`);
  process.exit(1);
}
mkdirSync(dir, { recursive: true });
for (const [name, content] of schemaFiles()) writeFileSync(join(dir, name), content);
console.log(`released ${schemaFiles().size} schemas to ${dir}`);
