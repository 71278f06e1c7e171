#!/usr/bin/env bash
# haetae-remote: the shared test vectors (testdata/vectors.json, checked byte for byte by the
# Rust tests) are recomputed by an independent implementation (Python hashlib/hmac and the
# `cryptography` package's AES-GCM): commitment, transcript, SAS, HKDF keys, sealed frames.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(python3 crates/haetae-remote/testdata/check_vectors.py)
echo "$out"
case "$out" in
  *"sealed frames ok"*) ;;
  *) echo "the sealed frames were not checked (python3-cryptography missing?)" >&2; exit 1 ;;
esac
