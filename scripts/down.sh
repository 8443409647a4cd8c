#!/usr/bin/env bash
# Stops the api, worker and receiver started by scripts/up.sh (SIGTERM: the worker
# drains first).
cd "$(dirname "$0")/.." || exit 1
for app in api worker receiver; do
  pidfile=".run/$app.pid"
  [ -f "$pidfile" ] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    echo "stopped $app ($pid)"
  fi
  rm -f "$pidfile"
done
