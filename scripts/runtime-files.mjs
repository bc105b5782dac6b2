#!/usr/bin/env node
// What the production image holds, in one place: the Dockerfile's build stage runs this script to
// lay the runtime folder out, and test/production/runtime-image.e2e.test.ts runs the same script
// into a temp folder, so what is tested is what ships.
//
//   node scripts/runtime-files.mjs <dest> [--install] [-- <extra npm ci flags>]
//
// The folder gets the root manifest and lockfile, the manifest and dist/ of each workspace the
// services run on, and the site configs; then (--install) `runtimeInstall` installs their
// production dependencies. Workspaces left out (testkit, mail-sink, the test workspace) are not on
// disk there, so npm installs nothing of theirs: their dependencies (smtp-server, mailparser,
// selfsigned) stay out without being made dev-only.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..');

/** Every workspace `npm run build` compiles (mail-sink too: `npm start` can run from the build). */
export const buildWorkspaces = [
  'contracts',
  'packages/db',
  'packages/event-store',
  'packages/bus',
  'packages/site-config',
  'packages/service-kit',
  'packages/mail-sink',
  'services/accounts',
  'services/notifications',
];

/** The workspaces the two services import at run time. */
export const runtimeWorkspaces = buildWorkspaces.filter((w) => w !== 'packages/mail-sink');

/** Files outside the workspaces: the manifests npm needs and the site configs the image defaults to. */
export const runtimeRootFiles = [
  'package.json',
  'package-lock.json',
  'config/site-config.jsonc',
  'config/site-config.docker.jsonc',
];

/**
 * Production dependencies only, exactly as locked. No install scripts: none of them needs one,
 * and it keeps any telemetry postinstall (scarf's) from running whatever the npm version.
 */
export const runtimeInstall = ['npm', 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'];

/**
 * How each service starts in the image (and in the test of the image, the chaos suite and the
 * pipeline bench): its one-file bundle (scripts/bundle-service.mjs), which loads only the
 * packages left out of it from node_modules.
 */
export const serviceEntry = (name) => [
  'node',
  '--max-semi-space-size=2',
  '--optimize-for-size',
  `services/${name}/dist/server.bundle.js`,
];

/** `serviceEntry` split for a spawn of `process.execPath`: node's flags, and the entry file (repo-relative). */
export function serviceCommand(name) {
  const [, ...nodeArgs] = serviceEntry(name);
  const entry = nodeArgs.pop();
  return { nodeArgs, entry };
}

function filesUnder(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push(path);
  }
  return out;
}

/** Paths (relative to the repo root) that go into the runtime folder; fails when a build is missing. */
export function runtimeFiles(root = repoRoot) {
  const files = [...runtimeRootFiles];
  for (const workspace of runtimeWorkspaces) {
    const dist = join(root, workspace, 'dist');
    if (!existsSync(dist)) throw new Error(`${workspace}/dist is missing: run \`npm run build\` first`);
    files.push(`${workspace}/package.json`, ...filesUnder(dist).map((f) => relative(root, f)));
  }
  return files;
}

/** Lays the runtime folder out at `dest` (emptied first) and optionally installs into it. */
export function assembleRuntime(dest, { root = repoRoot, install = false, npmFlags = [] } = {}) {
  rmSync(dest, { recursive: true, force: true });
  const files = runtimeFiles(root);
  for (const file of files) {
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    cpSync(join(root, file), join(dest, file));
  }
  if (install) {
    const [command, ...args] = runtimeInstall;
    const run = spawnSync(command, [...args, ...npmFlags], { cwd: dest, stdio: 'inherit' });
    if (run.status !== 0) throw new Error(`${runtimeInstall.join(' ')} failed (${run.status ?? run.signal})`);
  }
  return files;
}

if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const args = process.argv.slice(2);
  const dashdash = args.indexOf('--');
  const own = dashdash === -1 ? args : args.slice(0, dashdash);
  const npmFlags = dashdash === -1 ? [] : args.slice(dashdash + 1);
  const dest = own.find((a) => !a.startsWith('--'));
  if (!dest) {
    console.error('usage: node scripts/runtime-files.mjs <dest> [--install] [-- <npm ci flags>]');
    process.exit(2);
  }
  const files = assembleRuntime(resolve(dest), { install: own.includes('--install'), npmFlags });
  console.log(`runtime folder ${dest}: ${files.length} files`);
}
