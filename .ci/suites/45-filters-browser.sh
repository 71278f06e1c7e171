#!/usr/bin/env bash
# haetae-gateway filters in a real browser: the e2e-fields client module and virtual keypad
# (tests/browser/keypad.test.mjs) through Debian's chromium and playwright-core, against the
# e2e_fixture example (a gateway with e2e-fields in front of a banking page). Checks that a
# PIN typed on the keypad reaches the application as plaintext while the bytes on the wire
# and the page's DOM never contain it. Screenshots in target/browser-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."

BROWSER=${HAETAE_TEST_BROWSER:-/usr/bin/chromium}
if [ ! -x "$BROWSER" ]; then
  echo "45-filters-browser: $BROWSER not found; install the Debian package 'chromium' (listed in .ci/apt-packages)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
cargo build --locked --workspace --example e2e_fixture

echo "::: 45-filters-browser: e2e-fields keypad"
HAETAE_TEST_BROWSER=$BROWSER HAETAE_E2E_FIXTURE=target/debug/examples/e2e_fixture \
  node --test --test-concurrency=1 tests/browser/keypad.test.mjs
