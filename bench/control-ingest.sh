#!/usr/bin/env bash
# bench/control-ingest.sh — how fast the Control Center's store ingests events: 100 batches
# of 1000 gateway-shaped events (the ingest loop's batch size) through Store::insert_events
# into SQLite (a temporary file) and, when HAETAE_TEST_PG is set, into PostgreSQL (a private
# schema, dropped afterwards). Targets (issue 8): >= 20,000 events/s into SQLite and
# >= 50,000 events/s into PostgreSQL.
#
# Usage: bench/control-ingest.sh [runs]   (default 3 runs; each prints one line per backend)
# Figures from a machine whose 1-minute load is above 1.5 are labelled "loaded".
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
export HAETAE_TEST_PG=${HAETAE_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}
cargo build --quiet --release -p haetae-control --example ingest_rate
load() { awk '{print $1}' /proc/loadavg; }
label() { awk -v l="$(load)" 'BEGIN { if (l > 1.5) printf "loaded (load %s)", l; else printf "quiet (load %s)", l }'; }
echo "machine: $(nproc) cores, $(uname -sr); $(psql "$HAETAE_TEST_PG" -Atc 'show server_version' 2>/dev/null | sed 's/^/PostgreSQL /' || echo 'PostgreSQL version unknown')"
for run in $(seq "$RUNS"); do
  echo "run $run, $(label):"
  target/release/examples/ingest_rate | sed 's/^/  /'
done
