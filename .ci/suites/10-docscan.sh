#!/usr/bin/env bash
# haetae-docscan: builds the fuzz targets (stable Rust + libFuzzer), then, when the shared
# corpus is present, scores `haetae scan` on it: no panic, no unreadable file, at most 1% of
# valid files vulnerable, and no regression below the measured detection of corrupt and
# fuzz-crash files (88% on 2026-11-23; the issue's target is 95%).
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzz/run.sh build
SHARED=${HAETAE_SHARED:-$PWD/../shared}
if [ -d "$SHARED/corpora" ]; then
  cargo build --release --locked -q -p haetae
  python3 bench/docscan-eval.py --haetae target/release/haetae --corpus "$SHARED/corpora" \
    --min-flagged 0.85 --max-vulnerable 0.01
else
  echo "no $SHARED/corpora: corpus evaluation skipped"
fi
