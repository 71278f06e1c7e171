#!/usr/bin/env bash
# haetae-docscan: builds the fuzz targets (stable Rust + libFuzzer, verifiers only), then,
# when the shared corpus is present, scores `haetae scan` on it: no panic, no unreadable
# file, at most 1% of valid files vulnerable, and at least 95% of PngSuite x* + POI
# fuzz-crash files flagged (issue 4's targets).
#
# The corpus run uses the debug `haetae` the test step has already built (a release build
# of the whole binary costs minutes); a generous per-file time budget keeps the verdicts
# independent of the debug build's speed. Throughput is measured in bench/docscan.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzz/run.sh build
SHARED=${HAETAE_SHARED:-$PWD/../shared}
if [ -d "$SHARED/corpora" ]; then
  HAETAE=${CARGO_TARGET_DIR:-target}/debug/haetae
  [ -x "$HAETAE" ] || cargo build --locked -q --workspace --bins
  python3 bench/docscan-eval.py --haetae "$HAETAE" --corpus "$SHARED/corpora" \
    --time-budget-ms 120000 --min-flagged 0.95 --max-vulnerable 0.01
else
  echo "no $SHARED/corpora: corpus evaluation skipped"
fi
