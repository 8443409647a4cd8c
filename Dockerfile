# syntax=docker/dockerfile:1
#
# One image for the three processes of the telemetry platform (the api also serves the
# web console at /console), plus the local webhook receiver used in development:
#
#   docker run IMAGE            # = api      (HTTP api on $PORT, default 8000)
#   docker run IMAGE worker     # BullMQ worker (probes and metrics on $WORKER_PORT, default 8001)
#   docker run IMAGE migrate    # apply database migrations, then exit
#   docker run IMAGE receiver   # webhook receiver on $RECEIVER_PORT (9000); set RECEIVER_HOST=0.0.0.0
#   docker run IMAGE node -e …  # anything else runs as given
#
# Build with BuildKit (the default builder of current Docker and of `docker compose build`).

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: full dependency tree, compile the webpack bundles, drop dev dependencies ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_audit=false \
    npm_config_fund=false \
    npm_config_update_notifier=false

# Dependencies first so that a source change does not invalidate the `npm ci` layer.
# --ignore-scripts: the project does not rely on dependency install scripts (npm 11
# skips them by default too); the base image ships npm 10, which would run them.
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm \
    npm ci --ignore-scripts

COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
# The web console's typed client is generated from the committed OpenAPI document.
COPY docs/openapi.json ./docs/openapi.json
COPY scripts/console-bundle-size.js ./scripts/console-bundle-size.js
RUN npm run build \
 && test -f dist/console/index.html \
 && test -f dist/apps/api/main.js \
 && test -f dist/apps/worker/main.js \
 && test -f dist/apps/migrate/main.js \
 && test -f dist/apps/receiver/main.js

# The bundles keep node_modules external: ship only the production dependencies.
RUN npm prune --omit=dev --ignore-scripts

# --- runtime: production node_modules + bundles, non-root ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app

# Owned by root and read-only for the `node` user: the processes never write to /app.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --chmod=0755 scripts/docker-entrypoint.sh ./scripts/docker-entrypoint.sh

USER node

EXPOSE 8000 8001 9000

# Works for every role: the entrypoint finds out which process runs in the container
# (api: GET :$PORT/health/live, worker: GET :$WORKER_PORT/health/live, receiver:
# GET :$RECEIVER_PORT/health, migrate or anything else: passes). Uses node's global
# fetch; the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/app/scripts/docker-entrypoint.sh", "healthcheck"]

ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["api"]
