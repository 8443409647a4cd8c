#!/usr/bin/env bash
# The pipeline's end-to-end suites on a real three-master Redis Cluster on loopback (the
# machine's own redis-server, nothing kept on disk): REDIS_URL=redis+cluster://…, every
# other service as in `npm test`. Extra arguments go to jest.
source "$(dirname "$0")/lib.sh"
require_node
install_deps
ensure_tools
ensure_services

dir="$(mktemp -d)"
ports=()
stop_cluster() {
  for pid in "$dir"/*.pid; do [ -f "$pid" ] && kill -9 "$(cat "$pid")" 2>/dev/null; done
  rm -rf "$dir"
}
trap stop_cluster EXIT

# Three ports whose cluster bus ports (+10000) are free too, from a random start (below
# Linux's ephemeral range, 32768 and up, bus ports included).
port=$((12000 + RANDOM % 8000))
limit=$((port + 2000))
while [ "${#ports[@]}" -lt 3 ] && [ "$port" -lt "$limit" ]; do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
    ! (exec 3<>"/dev/tcp/127.0.0.1/$((port + 10000))") 2>/dev/null; then
    ports+=("$port")
  fi
  port=$((port + 1))
done
[ "${#ports[@]}" = 3 ] || die "no free ports for a Redis Cluster"

log "starting a Redis Cluster on ports ${ports[*]}"
for p in "${ports[@]}"; do
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 2000 --dir "$dir" \
    --save "" --appendonly no --daemonize yes --pidfile "$dir/$p.pid" --logfile "$dir/$p.log"
done
# Each port answers, and from the process this script started (not a neighbour's).
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do [ -s "$dir/$p.pid" ] && redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  [ "$(redis-cli -p "$p" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p')" = "$(cat "$dir/$p.pid" 2>/dev/null)" ] ||
    die "redis-server on port $p did not start: $(tail -3 "$dir/$p.log" 2>/dev/null)"
done
redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 \
  --cluster-yes >"$dir/create.log" || die "redis-cli --cluster create failed: $(cat "$dir/create.log")"
for p in "${ports[@]}"; do
  ok=0
  for _ in $(seq 1 100); do
    redis-cli -p "$p" cluster info | grep -q cluster_state:ok && ok=1 && break
    sleep 0.1
  done
  [ "$ok" = 1 ] || die "cluster node $p did not reach cluster_state:ok"
done

log "running the pipeline suites on the cluster"
REDIS_URL="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]}" \
  npx jest --runInBand --forceExit \
  test/e2e/telemetry.e2e-spec.ts test/e2e/alerts.e2e-spec.ts test/e2e/webhooks.e2e-spec.ts \
  test/e2e/webhook-test-event.e2e-spec.ts test/e2e/backpressure.e2e-spec.ts \
  test/e2e/tenant-fairness.e2e-spec.ts test/e2e/quotas.e2e-spec.ts test/e2e/poison.e2e-spec.ts \
  test/e2e/redis-state.e2e-spec.ts test/e2e/api-key-auth.e2e-spec.ts \
  test/e2e/reminders.e2e-spec.ts test/e2e/silences.e2e-spec.ts test/e2e/offline.e2e-spec.ts \
  test/e2e/backtest.e2e-spec.ts "$@"
