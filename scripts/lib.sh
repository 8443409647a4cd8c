# Shared by scripts/up.sh and scripts/test.sh. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf '\033[31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Exports .env's variables that the environment does not already set (the environment
# wins, as it does inside the apps).
load_dotenv() {
  [ -f .env ] || return 0
  local line key
  while IFS= read -r line || [ -n "$line" ]; do
    [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key="${BASH_REMATCH[2]}"
    [ -n "${!key+x}" ] && continue
    local value="${BASH_REMATCH[3]}"
    value="${value%\"}"; value="${value#\"}"; value="${value%\'}"; value="${value#\'}"
    export "$key=$value"
  done < .env
}

# Node 20.19+ is the one thing we cannot install for you.
require_node() {
  command -v node >/dev/null || die "Node.js 20.19 or newer is required (https://nodejs.org)"
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
    || die "Node.js 20.19 or newer is required; found $(node --version)"
}

# Installs dependencies from the lockfile when node_modules is missing or stale.
install_deps() {
  local stamp=node_modules/.package-lock.json
  if [ ! -d node_modules ] || [ package-lock.json -nt "$stamp" ]; then
    log "installing dependencies (npm ci)"
    npm ci --no-audit --no-fund
  fi
}

# The command-line tools the README walkthrough uses (its test runs it): curl and jq.
ensure_tools() {
  local missing=()
  for tool in curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  # promtool (Debian's prometheus package) checks deploy/grafana/alerts.rules.yml.
  command -v promtool >/dev/null || missing+=(prometheus)
  # test/integration/pgbouncer.int-spec.ts runs the pipeline through a real PgBouncer.
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || missing+=(pgbouncer)
  # The console's browser tests (test/browser) drive Debian's Chromium with playwright-core.
  [ -x /usr/bin/chromium ] || command -v chromium >/dev/null || missing+=(chromium)
  # The Redis Cluster suites start their own redis-server processes (redis-cli joins them).
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    die "the README walkthrough (and its test) needs: ${missing[*]}. On Debian/Ubuntu: apt-get install -y ${missing[*]}"
  fi
}

# Makes PostgreSQL and Redis answer at DATABASE_URL / REDIS_URL: use running ones; else
# docker compose when an engine answers; else, as root on Debian, apt-get install them;
# else say exactly what to install.
ensure_services() {
  if node scripts/check-services.js 2>/dev/null; then return 0; fi
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    log "starting postgres and redis with docker compose"
    docker compose up -d --wait postgres redis
  elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    start_local_services
  else
    node scripts/check-services.js || true
    die "PostgreSQL 15+ and Redis 7 are needed. Start them (or install Docker), or on Debian/Ubuntu run as root:
    apt-get install -y postgresql redis-server
and set DATABASE_URL / REDIS_URL if they are not on 127.0.0.1."
  fi
  for _ in $(seq 1 30); do
    node scripts/check-services.js 2>/dev/null && return 0
    sleep 1
  done
  node scripts/check-services.js || die "services did not come up"
}

start_local_services() {
  local installed=0
  if ! command -v pg_ctlcluster >/dev/null || ! command -v redis-server >/dev/null; then
    log "installing postgresql and redis-server with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql redis-server >/dev/null
    installed=1
  fi
  if node scripts/check-services.js 2>&1 | grep -q '^postgres:'; then
    local version
    version="$(ls /etc/postgresql | sort -n | tail -1)"
    if [ "$installed" = 1 ]; then
      # A cluster we just installed: let local connections in without a password, as the
      # default DATABASE_URL (postgres@127.0.0.1) expects. Development machines only.
      sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' \
        "/etc/postgresql/$version/main/pg_hba.conf"
    fi
    log "starting postgresql $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  if node scripts/check-services.js 2>&1 | grep -q '^redis:'; then
    log "starting redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  fi
}
