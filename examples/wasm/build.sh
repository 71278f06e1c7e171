#!/usr/bin/env bash
# Builds the example Proxy-Wasm filters that need a compiler:
#   c/block_header.c -> $OUT/block_header.wasm  (clang --target=wasm32-wasi, reactor)
# Debian packages: clang lld wasi-libc libclang-rt-dev-wasm32 (.ci/apt-packages).
# Usage: examples/wasm/build.sh [OUT_DIR]   (default: target/wasm-examples)
# The integration test picks the module up with
#   HAETAE_TEST_WASM_C=$OUT/block_header.wasm cargo nextest run -p haetae-gateway --test wasm
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../../target/wasm-examples}"
mkdir -p "$out"
CC="${CC_WASM:-clang}"
"$CC" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wno-unused-parameter -Werror \
  -o "$out/block_header.wasm" "$here/c/block_header.c"
echo "built $out/block_header.wasm ($(stat -c %s "$out/block_header.wasm") bytes)"
