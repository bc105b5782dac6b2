#!/usr/bin/env node
// Gives every built workspace a `production` export condition (its dist/*.js) beside the default
// (its src/*.ts, which tsx, tsc and the tests keep resolving), and a `build` script.
// Idempotent. It rewrites only those two fields, as text: other people edit the same manifests at
// the same time, so each file is read right before it is written and every other byte is kept.
//   node scripts/production-exports.mjs          rewrite
//   node scripts/production-exports.mjs --check  exit 1 if a manifest is not in that shape
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildWorkspaces } from './runtime-files.mjs';

const root = join(import.meta.dirname, '..');
const check = process.argv.includes('--check');
const BUILD = 'rm -rf dist && tsc -p tsconfig.build.json';

/** The `{…}` value starting at `open` (an index of `{`), up to its matching brace. */
function objectEnd(text, open) {
  let depth = 0;
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i + 1;
  }
  throw new Error('unbalanced braces');
}

/** Replaces the value of the top-level field `name` (an object) with `render(value, indent, text)`. */
function replaceField(text, name, render) {
  const key = new RegExp(`^( *)"${name}": \\{`, 'm').exec(text);
  if (!key) throw new Error(`no "${name}" field`);
  const open = key.index + key[0].length - 1;
  const end = objectEnd(text, open);
  const value = JSON.parse(text.slice(open, end));
  return text.slice(0, open) + render(value, key[1], text.slice(open, end)) + text.slice(end);
}

function srcToDist(path) {
  const m = /^\.\/src\/(.+)\.ts$/.exec(path);
  if (!m) throw new Error(`export ${path} is not ./src/*.ts`);
  return `./dist/${m[1]}.js`;
}

function renderExports(exports, indent) {
  const inner = `${indent}  `;
  const lines = Object.entries(exports).map(([subpath, target]) => {
    const source = typeof target === 'string' ? target : target.default;
    const production = srcToDist(source);
    return [
      `${inner}${JSON.stringify(subpath)}: {`,
      `${inner}  "production": ${JSON.stringify(production)},`,
      `${inner}  "default": ${JSON.stringify(source)}`,
      `${inner}}`,
    ].join('\n');
  });
  return `{\n${lines.join(',\n')}\n${indent}}`;
}

function renderScripts(scripts, original) {
  if (scripts.build === BUILD) return original;
  if (scripts.build !== undefined) throw new Error(`has another build script: ${scripts.build}`);
  // Inserted as a line before "typecheck", so the rest of the block stays as it was.
  const line = /^( *)"typecheck": /m.exec(original);
  if (!line) throw new Error('no "typecheck" script to put "build" beside');
  return `${original.slice(0, line.index)}${line[1]}"build": ${JSON.stringify(BUILD)},\n${original.slice(line.index)}`;
}

let wrong = 0;
for (const workspace of buildWorkspaces) {
  const file = join(root, workspace, 'package.json');
  const before = readFileSync(file, 'utf8');
  let after = replaceField(before, 'exports', renderExports);
  after = replaceField(after, 'scripts', (scripts, _indent, text) => renderScripts(scripts, text));
  JSON.parse(after);
  if (after === before) continue;
  if (check) {
    console.error(`${workspace}/package.json: exports or build script not in the production shape`);
    wrong++;
    continue;
  }
  // Re-read just before writing: if someone changed the file meanwhile, stop rather than undo their edit.
  if (readFileSync(file, 'utf8') !== before) throw new Error(`${file} changed while rewriting it; run again`);
  writeFileSync(file, after);
  console.log(`${workspace}/package.json: exports and build script rewritten`);
}
if (wrong) process.exit(1);
