# syntax=docker/dockerfile:1
#
# One multi-stage file, one target per service (accounts, notifications):
#   docker build --target accounts -t sitemail-accounts .
#   docker build --target notifications -t sitemail-notifications .
# docker-compose.yml builds both.
#
# `build` installs everything (dev dependencies included), compiles the workspaces with tsc and
# bundles each service's entry point with esbuild
# (`npm run build`) and lays out /runtime with scripts/runtime-files.mjs: the root manifest and
# lockfile, each runtime workspace's package.json and dist/, the site configs, and their production
# dependencies (`npm ci --omit=dev --ignore-scripts`). The image copies only that folder, so it
# holds no tsx, TypeScript, biome, turbo, test, bench or testkit code and no .ts sources.
# test/production/runtime-image.e2e.test.ts runs the same script and this file's CMDs without Docker.
#
# The whole context is copied before the first `npm ci` (rather than only the package.json files,
# which would cache the install better): npm workspaces need every workspace manifest, and a list
# kept here would silently fall behind new workspaces. .dockerignore keeps node_modules, dist and
# data out.

FROM node:20-slim AS build
WORKDIR /src
COPY . .
# Install scripts: only esbuild's is allowed (package.json `allowScripts`); scarf's telemetry is
# denied there and by `scarfSettings` for npm 10, which node:20-slim ships.
ENV TURBO_TELEMETRY_DISABLED=1
RUN npm ci --no-audit --no-fund \
 && npm run build \
 && node scripts/runtime-files.mjs /runtime --install

FROM node:20-slim AS runtime
WORKDIR /app
# Owned by root and read-only for the service; only the data folder (PGlite, bus files when
# DATABASE_URL / KAFKA_BROKERS are unset) is writable.
COPY --from=build /runtime /app
RUN mkdir -p /app/.data && chown node:node /app/.data
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    SITE_CONFIG=/app/config/site-config.docker.jsonc \
    LOG_LEVEL=info
USER node

# `dist/server.bundle.js` is the service's compiled code and its dependencies in one file
# (scripts/bundle-service.mjs: about half the start-up CPU and 8 MB less memory than loading
# ~1,500 modules); the few packages it leaves out load from node_modules. `--max-semi-space-size=2`
# caps V8's young generation at 2 MB per semi-space (default grows to 16 MB under load): ~22 MB
# less resident memory idle and at peak per service, at no measured CPU cost per email
# (test/bench/pipeline/README.md, run G notes). `--optimize-for-size` lets the old generation grow
# less between full collections: over a 5,000-email burst peak RSS 166 -> 111-114 MB (accounts) and
# 226 -> 119-120 MB (notifications), for ~15 % more CPU per email in notifications (run H, where
# the alternatives are measured). scripts/runtime-files.mjs `serviceEntry` is the
# same command; test/production/runtime-image.e2e.test.ts checks both and that it takes effect.
FROM runtime AS accounts
ENV PORT=3001
EXPOSE 3001
CMD ["node", "--max-semi-space-size=2", "--optimize-for-size", "services/accounts/dist/server.bundle.js"]

FROM runtime AS notifications
ENV PORT=3002
EXPOSE 3002
CMD ["node", "--max-semi-space-size=2", "--optimize-for-size", "services/notifications/dist/server.bundle.js"]
