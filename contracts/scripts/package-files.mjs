#!/usr/bin/env node
// How contracts becomes a package a fleet service outside this monorepo installs (README,
// "Using the contracts outside this repository"). Plain .mjs: it runs in the build, before tsx.
//
//   node scripts/package-files.mjs declarations  after tsc: `./x.ts` → `./x.js` in dist/*.d.ts
//   node scripts/package-files.mjs prepack       npm pack/publish: the packed manifest in place
//   node scripts/package-files.mjs postpack      the workspace manifest back
//
// Why the manifest is swapped while packing: inside the monorepo, `@sitemail/contracts` must
// resolve to src/*.ts under the default conditions (tsx in dev and tests, tsc's typecheck before
// any build), and to dist/ only under `production`. Plain Node in a fleet service uses the same
// default conditions and cannot run .ts, so the tarball's manifest points them at dist/. Both are
// the same file at different times; `packedManifest` derives one from the other so they cannot
// drift. An interrupted pack leaves the backup behind; the next prepack (or `postpack`) restores it.
import { copyFileSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const contractsDir = resolve(import.meta.dirname, '..');
const manifestPath = join(contractsDir, 'package.json');
const backupPath = join(contractsDir, '.package.workspace.json');

/**
 * tsc keeps the `.ts` specifiers of the sources in declarations even with
 * rewriteRelativeImportExtensions; consumers' TypeScript (any moduleResolution, older versions
 * too) resolves `./x.js` to `./x.d.ts`, so that is what the package ships.
 */
export function rewriteDeclarations(distDir = join(contractsDir, 'dist')) {
  let files = 0;
  for (const name of readdirSync(distDir)) {
    if (!name.endsWith('.d.ts')) continue;
    const path = join(distDir, name);
    const before = readFileSync(path, 'utf8');
    const after = before.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
    if (after !== before) writeFileSync(path, after);
    files++;
  }
  return files;
}

/**
 * The manifest inside the tarball: every code export's `production` target (dist/*.js) becomes
 * its `types` / `import` / `default`; file exports (JSON) stay. No scripts (they run monorepo
 * tools), no devDependencies, and no `private`, so the tested tarball itself can be published to
 * a registry (`npm publish <tarball>`) while the workspace cannot be published by accident.
 */
export function packedManifest(workspace) {
  const exports = Object.fromEntries(
    Object.entries(workspace.exports).map(([subpath, target]) => {
      if (typeof target === 'string') return [subpath, target];
      const js = target.production;
      if (typeof js !== 'string' || !js.startsWith('./dist/') || !js.endsWith('.js'))
        throw new Error(
          `contracts export ${subpath} has no production target in dist/ (${JSON.stringify(target)})`,
        );
      return [subpath, { types: js.replace(/\.js$/, '.d.ts'), import: js, default: js }];
    }),
  );
  const { private: _private, scripts: _scripts, devDependencies: _dev, ...rest } = workspace;
  return { ...rest, exports };
}

function restore() {
  if (!existsSync(backupPath)) return false;
  copyFileSync(backupPath, manifestPath);
  rmSync(backupPath);
  return true;
}

function prepack() {
  if (restore()) console.error('contracts: restored package.json left behind by an interrupted pack');
  const workspace = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const packed = packedManifest(workspace);
  for (const target of Object.values(packed.exports).flatMap((t) =>
    typeof t === 'string' ? [t] : Object.values(t),
  )) {
    if (!target.includes('*') && !existsSync(join(contractsDir, target)))
      throw new Error(`contracts: ${target} is missing: the build did not run`);
  }
  copyFileSync(manifestPath, backupPath);
  writeFileSync(manifestPath, `${JSON.stringify(packed, null, 2)}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const step = process.argv[2];
  if (step === 'declarations') rewriteDeclarations();
  else if (step === 'prepack') prepack();
  else if (step === 'postpack') restore();
  else {
    console.error('usage: node scripts/package-files.mjs declarations|prepack|postpack');
    process.exit(2);
  }
}
