/**
 * `npm run generate -w contracts`: writes the artefacts derived from the TypeBox source —
 * `generated/asyncapi.json` and `generated/schemas/<Event>.schema.json` — and removes schema files
 * of events that no longer exist. A test regenerates in memory and fails when these are stale.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAsyncApiDocument } from '../src/asyncapi.ts';
import { eventJsonSchemas } from '../src/json-schema.ts';

export const contractsDir = resolve(import.meta.dirname, '..');
export const generatedDir = join(contractsDir, 'generated');

const asJsonFile = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Every generated file, by path relative to `generated/`, with its exact content. */
export function generatedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  files.set('asyncapi.json', asJsonFile(buildAsyncApiDocument()));
  for (const [type, schema] of Object.entries(eventJsonSchemas())) {
    files.set(`schemas/${type}.schema.json`, asJsonFile(schema));
  }
  return files;
}

/** The JSON Schema files of a contract version, as `released/v<n>/` keeps them. */
export function schemaFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const [type, schema] of Object.entries(eventJsonSchemas()))
    files.set(`${type}.schema.json`, asJsonFile(schema));
  return files;
}

function main() {
  const files = generatedFiles();
  rmSync(join(generatedDir, 'schemas'), { recursive: true, force: true });
  for (const [path, content] of files) {
    mkdirSync(dirname(join(generatedDir, path)), { recursive: true });
    writeFileSync(join(generatedDir, path), content);
  }
  const count = readdirSync(join(generatedDir, 'schemas')).length;
  console.log(`generated ${generatedDir}/asyncapi.json and ${count} schemas in ${generatedDir}/schemas`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
