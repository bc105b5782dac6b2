# syntax=docker/dockerfile:1
#
# One multi-stage file, one target per service (accounts, notifications): both run the same
# monorepo install — TypeScript runs directly through tsx, there is no build step — so a shared
# `base` stage installs once and each target only sets its port and command.
#   docker build --target accounts -t sitemail-accounts .
#   docker build --target notifications -t sitemail-notifications .
# docker-compose.yml builds both.
#
# The whole context is copied before `npm ci` (rather than only the package.json files, which
# would cache the install better): npm workspaces need every workspace manifest, and a list kept
# here would silently fall behind new workspaces. .dockerignore keeps node_modules and data out.

FROM node:20-slim AS base
WORKDIR /app
COPY . .
# Dev dependencies included: tsx (a dev dependency) runs the services.
RUN npm ci --no-audit --no-fund \
 && mkdir -p /app/.data \
 && chown node:node /app/.data
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    SITE_CONFIG=/app/config/site-config.docker.jsonc \
    LOG_LEVEL=info
USER node

FROM base AS accounts
ENV PORT=3001
EXPOSE 3001
CMD ["npx", "tsx", "services/accounts/src/server.ts"]

FROM base AS notifications
ENV PORT=3002
EXPOSE 3002
CMD ["npx", "tsx", "services/notifications/src/server.ts"]
