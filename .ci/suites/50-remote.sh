#!/usr/bin/env bash
# haetae-remote: the shared test vectors (testdata/vectors.json, checked byte for byte by the
# Rust tests) are recomputed by an independent implementation (Python hashlib/hmac and the
# `cryptography` package's AES-GCM): commitment, transcript, SAS, HKDF keys, sealed frames.
# Then the JavaScript side (node --test) checks the same vectors, and the two-browser story
# (tests/browser/remote.test.mjs) runs when a Chromium is present.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(python3 crates/haetae-remote/testdata/check_vectors.py)
echo "$out"
case "$out" in
  *"sealed frames ok"*) ;;
  *) echo "the sealed frames were not checked (python3-cryptography missing?)" >&2; exit 1 ;;
esac

# The browser's implementation (crates/haetae-control/assets/remote/proto.js) against the same
# vectors, in Node's WebCrypto: keys, SAS, handshake and sealed frames, every message; and the
# fail-closed rules (replay, reorder, bit flip, retyped, reflected frames).
node --test tests/browser/remote-proto.test.mjs
