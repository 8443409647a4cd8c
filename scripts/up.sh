#!/usr/bin/env bash
# Brings the whole system up on this machine: dependencies, PostgreSQL and Redis,
# migrations, then the api, the worker and the local webhook receiver in the background.
# `npm run down` stops them.
source "$(dirname "$0")/lib.sh"
require_node
install_deps
ensure_services

if [ ! -f .env ]; then
  log "creating .env with a fresh ADMIN_TOKEN"
  token="$(node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))')"
  # This .env is for this machine only: let webhooks reach the receiver on 127.0.0.1.
  sed -e "s/^ADMIN_TOKEN=.*/ADMIN_TOKEN=$token/" \
    -e "s/^WEBHOOK_ALLOW_PRIVATE_NETWORKS=.*/WEBHOOK_ALLOW_PRIVATE_NETWORKS=true/" \
    .env.example > .env
fi
load_dotenv

log "building"
npm run --silent build >/dev/null
log "migrating"
node dist/apps/migrate/main.js

bash scripts/down.sh >/dev/null 2>&1 || true
mkdir -p .run
for app in api worker receiver; do
  nohup node "dist/apps/$app/main.js" >".run/$app.log" 2>&1 &
  echo $! >".run/$app.pid"
done

wait_ready() {
  for _ in $(seq 1 60); do
    node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1" && return 0
    sleep 0.5
  done
  die "$2 did not become ready; see .run/$2.log"
}
wait_ready "http://127.0.0.1:${PORT:-8000}/health/ready" api
[ "${WORKER_PORT:-8001}" = 0 ] || wait_ready "http://127.0.0.1:${WORKER_PORT:-8001}/health/ready" worker
receiver_host="${RECEIVER_HOST:-127.0.0.1}"
case "$receiver_host" in
  0.0.0.0 | ::) receiver_host=127.0.0.1 ;; # listening everywhere: ask on loopback
  *:*) receiver_host="[$receiver_host]" ;; # an IPv6 address in a URL
esac
receiver="http://$receiver_host:${RECEIVER_PORT:-9000}"
wait_ready "$receiver/health" receiver

api="http://127.0.0.1:${PORT:-8000}"
cat <<INFO

  api        $api            (logs: .run/api.log)
  console    $api/console/    (sign in with a project API key)
  docs       $api/docs
  worker     http://127.0.0.1:${WORKER_PORT:-8001}/health/ready   (logs: .run/worker.log)
  receiver   $receiver/            (logs: .run/receiver.log)
  stop with  npm run down

See it work end to end: devices, rules, alerts and webhooks to the receiver below,
the first alert arriving within seconds (about a minute in all):

  npm run demo

Mint a first API key (creates an org and a project, or mints another key for an existing
one; ADMIN_TOKEN is read from .env), then follow "Your first alert" in README.md:

  npm run mint-key -- my-project

Webhooks: a webhook URL of $receiver/ reaches the local receiver; open that
page to see each delivery and whether its signature verifies (paste the webhook's
whsec_ secret there, or set RECEIVER_SECRETS in .env). $receiver/status/503 answers
503, to try retries and the circuit breaker; ?delay_ms=15000 answers late.

INFO
case "$(printf %s "${WEBHOOK_ALLOW_PRIVATE_NETWORKS:-false}" | tr '[:upper:]' '[:lower:]')" in
  true | 1 | yes) ;;
  *) printf '  note: WEBHOOK_ALLOW_PRIVATE_NETWORKS is not true in .env, so the api and worker\n        refuse webhook URLs on 127.0.0.1 (set it to true on this machine only).\n\n' ;;
esac
