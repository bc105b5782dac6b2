#!/usr/bin/env node
// Bundles a service's compiled entry point (dist/server.js, from tsc) into one ES module,
// dist/server.bundle.js, which the image and the benches run (`serviceEntry` in runtime-files.mjs).
//
//   node ../../scripts/bundle-service.mjs        (run by each service's `build`, in its folder)
//
// Why: loading ~1,500 small modules is most of a service's start. Measured on the built services
// (Postgres, in-process bus, load ~3): CPU from spawn to /healthz 1.97 → 0.95 s for accounts and
// 2.46 → 1.28 s for notifications, and 8 MB less resident memory each; bundling only the
// workspace code gained nothing, the third-party modules are the cost.
//
// Left out of the bundle and loaded from node_modules as before, each for a reason that would
// break it inside one file:
const external = [
  // The bus patches kafkajs's consumer group through its internal module path
  // (packages/bus/src/kafkajs-join.ts): the patched copy must be the copy the bus uses.
  'kafkajs',
  // Its WebAssembly and data files are found next to its own modules.
  '@electric-sql/pglite',
  // pg's optional native binding (never installed here), required only when asked for.
  'pg-native',
  // Serve or read files relative to their own folder (UI assets, their package.json).
  '@fastify/swagger-ui',
  '@fastify/swagger',
  // The service kit resolves it from fastify's folder (lazy serializers): one copy for both.
  '@fastify/fast-json-stringify-compiler',
  // Imported only when OTEL_* turns tracing on: stays out of memory otherwise.
  '@opentelemetry/exporter-trace-otlp-http',
];

import { build } from 'esbuild';

await build({
  entryPoints: ['dist/server.js'],
  outfile: 'dist/server.bundle.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The packages' own production builds (dist/*.js), as `--conditions=production` picks them.
  conditions: ['production'],
  // ESM builds first where a package has both: jsonc-parser's UMD main requires files by a
  // computed path that no bundler can follow.
  mainFields: ['module', 'main'],
  external,
  // CommonJS modules inside an ES module bundle still call require() for Node's built-ins and
  // the external packages.
  banner: {
    js: "import { createRequire as __bundleRequire } from 'node:module';\nconst require = __bundleRequire(import.meta.url);",
  },
  // Stack traces name the original files with `node --enable-source-maps`.
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'none',
  logLevel: 'warning',
});
