#!/usr/bin/env bash
# Builds the haetae-docscan and haetae-remote fuzz targets with libFuzzer on stable Rust (no cargo-fuzz): the
# sanitizer-coverage instrumentation is plain -C flags; no nightly features are used.
#   fuzz/run.sh build              build every target
#   fuzz/run.sh run TARGET [SECS]  run one target for SECS seconds (default 60) on a corpus
#                                  seeded from ../shared/corpora when it exists
set -euo pipefail
cd "$(dirname "$0")"
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks --cfg fuzzing"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/../target/fuzz}
TARGETS=(scan_any ole officeart zip images pdf_rtf convert remote_decode h1_response h1_request)
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros.
TRIPLE=$(rustc -vV | sed -n "s/^host: //p")
case "${1:-build}" in
  build)
    cargo build --release --target "$TRIPLE" --bins
    ;;
  run)
    t=${2:?target}
    secs=${3:-60}
    cargo build --release --target "$TRIPLE" --bin "$t"
    corpus="$CARGO_TARGET_DIR/corpus/$t"
    mkdir -p "$corpus" "$CARGO_TARGET_DIR/artifacts/$t"
    shared=${HAETAE_SHARED:-$PWD/../../shared}/corpora
    if [ "$t" = remote_decode ] && [ -z "$(ls -A "$corpus")" ]; then
      # Seeds: every frame of the shared test vectors.
      python3 - "$corpus" ../crates/haetae-remote/testdata/vectors.json <<'PY'
import json, sys
corpus, v = sys.argv[1], json.load(open(sys.argv[2]))
frames = list(v["handshake"]["frames"].values()) + [x["frame"] for k in ("sealed", "relay", "invalid") for x in v[k]]
frames += ["%02x%s" % (m["type"], m["body"]) for m in v["messages"]]
for i, f in enumerate(frames):
    open("%s/vector-%03d" % (corpus, i), "wb").write(bytes.fromhex(f))
PY
    elif [ -d "$shared" ] && [ -z "$(ls -A "$corpus")" ]; then
      # Seeds: small corpus files (the targets add their own magic, so strip nothing:
      # libFuzzer mutates from whole files just as well).
      find "$shared/images" "$shared/office" "$shared/hwp" "$shared/pdf" -type f -size -64k \
        | awk "NR <= 400" | while read -r f; do cp "$f" "$corpus/$(sha1sum "$f" | cut -c1-16)"; done
    fi
    "$CARGO_TARGET_DIR/$TRIPLE/release/$t" "$corpus" -max_total_time="$secs" -rss_limit_mb=1024 \
      -timeout=10 -artifact_prefix="$CARGO_TARGET_DIR/artifacts/$t/" -print_final_stats=1
    ;;
  *) echo "usage: $0 build | run TARGET [SECS]   (targets: ${TARGETS[*]})" >&2; exit 2 ;;
esac
