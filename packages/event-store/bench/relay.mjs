#!/usr/bin/env node
// Runs bench/relay.bench.ts on plain Node: the TypeScript of the workspaces is bundled with esbuild
// (dependencies stay external, loaded from node_modules as usual) and the bundle is run in a child.
// Under the tsx loader the same process starts at about 195 MiB RSS before doing anything (tsx's
// per-module transforms of typebox, PGlite and friends), plain Node at about 100 MiB; the bench
// measures the relay, not the dev loader. `npx tsx bench/relay.bench.ts` still works, for comparison.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const outfile = join(root, 'node_modules', '.cache', 'sitemail-bench', 'relay.bench.mjs');

await build({
  entryPoints: [join(here, 'relay.bench.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
  plugins: [
    {
      name: 'workspaces-only',
      setup(b) {
        // Workspace packages are TypeScript: bundle them. Everything else loads from node_modules.
        b.onResolve({ filter: /^[^./]/ }, (args) =>
          args.path.startsWith('@sitemail/') ? undefined : { external: true },
        );
        // Files that find their neighbours through import.meta.url (the mock-cluster launcher's C
        // source) keep their own URL instead of the bundle's.
        b.onLoad({ filter: /[/\\]packages[/\\].*\.ts$/ }, (args) => ({
          contents: readFileSync(args.path, 'utf8').replaceAll(
            'import.meta.url',
            JSON.stringify(pathToFileURL(args.path).href),
          ),
          loader: 'ts',
        }));
      },
    },
  ],
});
// A young generation of 1 MiB (V8's default is 16): kafkajs allocates a lot of short-lived buffers
// per produce request, and with the default the process's RSS rises by ~40 MiB of garbage that a
// scavenge would free. Same flags for the raw baseline child. BENCH_NODE_FLAGS="" runs with V8's defaults.
const nodeFlags = (process.env.BENCH_NODE_FLAGS ?? '--max-semi-space-size=1').split(' ').filter(Boolean);
const result = spawnSync(process.execPath, [...nodeFlags, outfile, ...process.argv.slice(2)], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
