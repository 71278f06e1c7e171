#!/usr/bin/env bash
# Events per second through NATS JetStream: haetae-bus's emitter and durable subscription
# beside plain async-nats doing the same work on the same events and server, with ratios.
# Usage: bench/bus.sh [nats-url] [events]   (defaults: $HAETAE_TEST_NATS or
# nats://127.0.0.1:4222, 100000). Needs a nats-server with JetStream (-js) at the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
URL=${1:-${HAETAE_TEST_NATS:-nats://127.0.0.1:4222}}
EVENTS=${2:-100000}
cargo build --quiet --release -p haetae-bus --example bus_bench
echo "machine: $(nproc) cores, $(uname -sr); nats-server: $(nats-server --version 2>/dev/null || /usr/sbin/nats-server --version 2>/dev/null || echo unknown)"
exec target/release/examples/bus_bench "$URL" "$EVENTS"
