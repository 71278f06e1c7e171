#!/usr/bin/env bash
# haetae-control: browser tests of the Security Control Center (playwright-core driving
# Debian's chromium; never a downloaded browser). Screenshots are kept as CI artifacts in
# target/browser-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/../.."

BROWSER=${HAETAE_TEST_BROWSER:-/usr/bin/chromium}
if [ ! -x "$BROWSER" ]; then
  echo "40-control: $BROWSER not found; install the Debian package 'chromium' (listed in .ci/apt-packages)" >&2
  exit 1
fi
if [ ! -d node_modules/playwright-core ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
cargo build --locked -p haetae-control --example browser_fixture
HAETAE_TEST_BROWSER=$BROWSER node --test --test-concurrency=1 tests/browser/
echo "40-control: screenshots in target/browser-screenshots/"
