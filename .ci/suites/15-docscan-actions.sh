#!/usr/bin/env bash
# haetae-docscan disarm (issue 5), when the shared corpus is present: every valid corpus
# file goes through `haetae scan --disarm`; every copy must open in its format's own reader
# (python-docx, openpyxl, python-pptx, pikepdf, olefile, Pillow from PyPI, in a venv under
# target/; images must decode to the same pixels as their originals, every frame; plain ZIP
# copies are read back member by member; text renditions must hold the original's text by an
# independent measure), contain no macros, scripts, external targets, DDE or embedded
# objects, and scan clean. Encrypted documents are counted apart (no copy without the key).
# Uses the debug `haetae` the test step has already built.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${HAETAE_SHARED:-$PWD/../shared}
if [ ! -d "$SHARED/corpora" ]; then
  echo "no $SHARED/corpora: disarm check skipped"
  exit 0
fi
HAETAE=${CARGO_TARGET_DIR:-target}/debug/haetae
[ -x "$HAETAE" ] || cargo build --locked -q --workspace --bins
python3 bench/docscan-disarm-check.py --haetae "$HAETAE" --corpus "$SHARED/corpora" \
  --venv "${CARGO_TARGET_DIR:-target}/disarm-check-venv"
