#!/usr/bin/env bash
# The whole test suite (unit, integration, e2e) against real PostgreSQL and Redis.
# Each run creates its own database and Redis prefix and removes them at the end.
# Extra arguments go to jest (e.g. --coverage).
source "$(dirname "$0")/lib.sh"
require_node
install_deps
ensure_tools
ensure_services
log "building the web console (test/browser drives it in Chromium)"
npm run --silent build:console >/dev/null
log "running tests"
# --forceExit: once every suite has finished, a handle some suite leaked must not hold the
# run open (CI has a time budget). A shutdown that hangs still fails its suite: afterAll
# hooks time out, and test/support/shutdown.ts names the step that hangs.
exec npx jest --runInBand --coverage --forceExit "$@"
