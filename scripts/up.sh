#!/usr/bin/env bash
# Brings the whole system up on this machine: dependencies, PostgreSQL and Redis,
# migrations, then the api and the worker in the background. `npm run down` stops them.
source "$(dirname "$0")/lib.sh"
require_node
install_deps
ensure_services

if [ ! -f .env ]; then
  log "creating .env with a fresh ADMIN_TOKEN"
  token="$(node -e 'process.stdout.write(require("crypto").randomBytes(24).toString("base64url"))')"
  sed "s/^ADMIN_TOKEN=.*/ADMIN_TOKEN=$token/" .env.example > .env
fi
load_dotenv

log "building"
npm run --silent build >/dev/null
log "migrating"
node dist/apps/migrate/main.js

bash scripts/down.sh >/dev/null 2>&1 || true
mkdir -p .run
for app in api worker; do
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

api="http://127.0.0.1:${PORT:-8000}"
cat <<INFO

  api        $api            (logs: .run/api.log)
  docs       $api/docs
  worker     http://127.0.0.1:${WORKER_PORT:-8001}/health/ready   (logs: .run/worker.log)
  stop with  npm run down

Mint a first API key (creates an org and a project; ADMIN_TOKEN is read from .env):

  npm run mint-key -- my-project

INFO
