#!/usr/bin/env bash
# bench/control-propagation.sh — policy propagation in the distributed shape: a Control
# Center on PostgreSQL publishes through NATS JetStream to two gateways (one process, real
# sockets; crates/haetae-control/examples/propagation.rs). For each publish, the time from
# sending POST /api/v1/policy/publish until both gateways run the new version. Prints p50,
# p90, p99 and the maximum. Target (issue 8): p99 <= 200 ms.
#
# Usage: bench/control-propagation.sh [publishes]   (default 100)
# Needs PostgreSQL (HAETAE_TEST_PG) and NATS with JetStream (HAETAE_TEST_NATS); the run uses
# a private NATS namespace and PostgreSQL schema and removes both. Figures from a machine
# whose 1-minute load is above 1.5 are labelled "loaded".
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
export HAETAE_TEST_PG=${HAETAE_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
export HAETAE_TEST_NATS=${HAETAE_TEST_NATS:-nats://127.0.0.1:4222}
cargo build --quiet --release -p haetae-control --example propagation
LOAD=$(awk '{print $1}' /proc/loadavg)
echo "machine: $(nproc) cores, $(uname -sr); load before the run $LOAD$(awk -v l="$LOAD" 'BEGIN { if (l > 1.5) print " (loaded)" }')"
target/release/examples/propagation "$N"
echo "load after the run $(awk '{print $1}' /proc/loadavg)"
