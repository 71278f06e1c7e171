#!/usr/bin/env bash
# haetae-control: (1) browser tests of the Security Control Center in `haetae up` with a real
# gateway (playwright-core driving Debian's chromium; never a downloaded browser), screenshots kept as CI artifacts in
# target/browser-screenshots/; (2) schemathesis (PyPI, pinned) against
# /api/v1/openapi.json: no generated request may get a 5xx.
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
# The browser story runs the real `haetae up` (Center + gateway); schemathesis below runs
# against the Center alone (browser_fixture), so generated requests cannot touch a gateway.
# (the test step's build, so nothing is rebuilt with another feature set)
cargo nextest run --workspace --locked --no-run
cargo build --locked --workspace --example browser_fixture
FIXTURE=target/debug/examples/browser_fixture

echo "::: 40-control: browser tests"
HAETAE_TEST_BROWSER=$BROWSER HAETAE_UP_BINARY=target/debug/haetae \
  node --test --test-concurrency=1 tests/browser/control.test.mjs
echo "40-control: screenshots in target/browser-screenshots/"

echo "::: 40-control: schemathesis against the OpenAPI document"
VENV=target/schemathesis-venv
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
WORK=$(mktemp -d)
# The fixture reads events from stdin; keep it open with a sleeping writer we can stop.
mkfifo "$WORK/stdin"
sleep 3600 > "$WORK/stdin" &
KEEP_OPEN=$!
HAETAE_ADMIN_PASSWORD='schemathesis admin password' "$FIXTURE" < "$WORK/stdin" > "$WORK/out" &
CENTER=$!
cleanup() { kill "$CENTER" "$KEEP_OPEN" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
for _ in $(seq 100); do grep -q LISTENING "$WORK/out" && break; sleep 0.1; done
URL=$(awk '/^LISTENING/ {print $2}' "$WORK/out")
[ -n "$URL" ] || { echo "40-control: the Control Center fixture did not start" >&2; exit 1; }
curl -sf -c "$WORK/jar" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"schemathesis admin password"}' \
  "$URL/api/v1/session" > "$WORK/login.json"
CSRF=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["csrf_token"])' "$WORK/login.json")
TOKEN=$(curl -sf -b "$WORK/jar" -H "x-csrf-token: $CSRF" -H 'content-type: application/json' \
  -d '{"name":"schemathesis"}' "$URL/api/v1/tokens" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
# /stream never ends (Server-Sent Events); /session is exercised by the tests above and
# would lock the admin out when fuzzed with wrong passwords. The Wasm module upload's body is
# `application/wasm`, which schemathesis cannot generate ("no supported serializers"): its
# refusals (non-Wasm, oversize, bad signature, bad name) are tested in
# crates/haetae-control/tests/wasm_deploy.rs.
"$VENV/bin/schemathesis" run "$URL/api/v1/openapi.json" \
  -H "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error --max-examples 25 --seed 1 \
  --exclude-path /api/v1/stream --exclude-path /api/v1/session \
  --exclude-operation-id upload_module
