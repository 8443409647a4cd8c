#!/bin/sh
# Entrypoint of the telemetry-platform image (see Dockerfile).
#
#   api          HTTP api (default)                   node dist/apps/api/main.js
#   worker       BullMQ worker                        node dist/apps/worker/main.js
#   migrate      apply database migrations and exit   node dist/apps/migrate/main.js
#   receiver     local webhook receiver (development) node dist/apps/receiver/main.js
#   healthcheck  the image's HEALTHCHECK (not a role: probes the role running in PID 1)
#   anything else is executed as given, e.g. `sh` or `node -e '…'`.
#
# Roles are started with `exec`, so node replaces this shell and receives SIGTERM
# itself (directly as PID 1, or from tini with compose's `init: true`).
set -eu

APP_DIR=$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)

# Which role runs in this container? Read from PID 1's command line, because a
# HEALTHCHECK runs as a separate `exec` that does not see variables exported here.
# PID 1 is either node (…/dist/apps/ROLE/main.js) or tini/docker-init, whose
# arguments end with this script and the role.
detect_role() {
  [ -r /proc/1/cmdline ] || return 0
  tr '\0' '\n' </proc/1/cmdline \
    | sed -n -E \
      -e 's#^(.*/)?dist/apps/(api|worker|migrate|receiver)/main\.js$#\2#p' \
      -e 's#^(api|worker|migrate|receiver)$#\1#p' \
    | head -n 1
}

healthcheck() {
  role=$(detect_role)
  path=/health/live
  case "$role" in
    api) port=${PORT:-8000} ;;
    worker) port=${WORKER_PORT:-8001} ;;
    receiver) port=${RECEIVER_PORT:-9000} path=/health ;;
    *) exit 0 ;; # migrate (runs once and exits) or a custom command: nothing to probe
  esac
  # WORKER_PORT=0 turns the worker's probe listener off: nothing to probe either.
  [ "$port" != "0" ] || exit 0
  # shellcheck disable=SC2016 # the ${…} below are JavaScript template literals
  exec node -e '
    fetch(process.argv[1], { signal: AbortSignal.timeout(4000) })
      .then((res) => {
        if (!res.ok) console.error(`healthcheck: ${process.argv[1]} answered ${res.status}`);
        process.exit(res.ok ? 0 : 1);
      })
      .catch((err) => {
        console.error(`healthcheck: ${process.argv[1]}: ${err.cause?.code ?? err.message}`);
        process.exit(1);
      });
  ' "http://127.0.0.1:${port}${path}"
}

if [ "$#" -eq 0 ]; then
  set -- api
fi

case "$1" in
  api | worker | migrate | receiver)
    role=$1
    shift
    exec node "$APP_DIR/dist/apps/$role/main.js" "$@"
    ;;
  healthcheck)
    healthcheck
    ;;
  *)
    exec "$@"
    ;;
esac
