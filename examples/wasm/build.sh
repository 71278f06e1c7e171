#!/usr/bin/env bash
# Builds the example Proxy-Wasm filters that need a compiler:
#   c/block_header.c                -> $OUT/block_header.wasm (clang --target=wasm32-wasi, reactor)
#   assemblyscript/assembly/index.ts -> $OUT/as_block.wasm    (asc 0.14 + @solo-io/proxy-runtime 0.1.8)
# Debian packages for C: clang lld wasi-libc libclang-rt-dev-wasm32 (.ci/apt-packages);
# AssemblyScript: `npm ci` at the repository root (devDependencies in package.json).
# Usage: examples/wasm/build.sh [OUT_DIR] [c|as|all]   (default: target/wasm-examples all)
# The integration tests pick the modules up with
#   HAETAE_TEST_WASM_C=$OUT/block_header.wasm HAETAE_TEST_WASM_AS=$OUT/as_block.wasm \
#     cargo nextest run -p haetae-gateway --test wasm --run-ignored all
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/target/wasm-examples}"
what="${2:-all}"
mkdir -p "$out"
if [ "$what" = c ] || [ "$what" = all ]; then
  CC="${CC_WASM:-clang}"
  "$CC" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Wno-unused-parameter -Werror \
    -o "$out/block_header.wasm" "$here/c/block_header.c"
  echo "built $out/block_header.wasm ($(stat -c %s "$out/block_header.wasm") bytes)"
fi
if [ "$what" = as ] || [ "$what" = all ]; then
  asc="$root/node_modules/.bin/asc"
  if [ ! -x "$asc" ]; then
    echo "build.sh: $asc missing; run 'npm ci' at the repository root" >&2
    exit 1
  fi
  # --use abort=abort_proc_exit: the SDK's convention (an abort becomes wasi proc_exit,
  # which the host turns into a trap).
  (cd "$root" && "$asc" "$here/assemblyscript/assembly/index.ts" -b "$out/as_block.wasm" \
    --use abort=abort_proc_exit --optimize 2>&1 | grep -v -e 'AS201' -e 'utoa32' -e '~~~~' \
    -e 'lib/number.ts' -e '^\s*$' || true)
  [ -s "$out/as_block.wasm" ] || { echo "build.sh: asc produced no as_block.wasm" >&2; exit 1; }
  echo "built $out/as_block.wasm ($(stat -c %s "$out/as_block.wasm") bytes)"
fi
