#!/usr/bin/env bash
# The whole test suite (unit, integration, e2e) against real PostgreSQL and Redis.
# Each run creates its own database and Redis prefix and removes them at the end.
# Extra arguments go to jest (e.g. --coverage).
source "$(dirname "$0")/lib.sh"
require_node
install_deps
ensure_tools
ensure_services
log "running tests"
exec npx jest --runInBand --coverage "$@"
