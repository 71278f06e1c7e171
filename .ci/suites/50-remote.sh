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

# Two Chromium instances against the real `haetae up` (agent console in the Control Center,
# customer page at /r/CODE, relay at /relay): code, consent, SAS, tab capture with WebCodecs,
# the counter read back from the agent's canvas, chat both ways, pointer, a tampered frame
# failing closed. Skipped, visibly, without a Chromium.
BROWSER=${HAETAE_TEST_BROWSER:-/usr/bin/chromium}
if [ -x "$BROWSER" ]; then
  if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund --loglevel=error
  fi
  cargo build --locked -p haetae
  echo "::: 50-remote: two-browser remote support test"
  HAETAE_TEST_BROWSER=$BROWSER HAETAE_UP_BINARY=target/debug/haetae \
    node --test --test-concurrency=1 tests/browser/remote.test.mjs
  echo "50-remote: screenshots in target/browser-screenshots/remote-*.png"
else
  echo "50-remote: SKIPPED the two-browser test: $BROWSER not found (install the Debian package 'chromium')" >&2
fi

# The recording format (recording.js, in Node's WebCrypto) against the bundle the Rust side
# wrote (crates/haetae-control/testdata/recording-vector.json).
node --test tests/browser/remote-recording-format.test.mjs

# Session recording (issue 10, point 7): a `haetae up` with a recording key from
# `haetae remote keygen`; the agent console records a session encrypted in the browser, an
# auditor replays it (the counter read back from the playback canvas; a wrong key refused),
# and `haetae remote export-recording` decrypts the downloaded bundle.
if [ -x "$BROWSER" ]; then
  echo "::: 50-remote: recording and playback"
  HAETAE_TEST_BROWSER=$BROWSER HAETAE_UP_BINARY=target/debug/haetae \
    node --test --test-concurrency=1 tests/browser/remote-recording.test.mjs
fi

# Relay failover in the browser's code: the resume vectors (re-key, Resume frames, the
# retransmitted chat: the same bytes as Rust), acknowledgements and the re-key's fail-closed
# rules; then link.js's RelayLink against two real `haetae relay` processes sharing NATS
# JetStream KV, relay A killed with SIGKILL mid-session (needs HAETAE_TEST_NATS; .ci/run sets it).
node --test tests/browser/remote-resume.test.mjs
if [ -n "${HAETAE_TEST_NATS:-}" ]; then
  cargo build --locked -p haetae
  echo "::: 50-remote: relay failover with two haetae relay processes"
  HAETAE_UP_BINARY=target/debug/haetae HAETAE_TEST_NATS=$HAETAE_TEST_NATS \
    node --experimental-websocket --test tests/browser/remote-failover.test.mjs
else
  echo "50-remote: SKIPPED the relay-process failover test: HAETAE_TEST_NATS not set" >&2
fi
