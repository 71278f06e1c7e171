#!/usr/bin/env bash
# Remote support benchmark (issue 10): relay capacity and glass-to-glass latency/bitrate.
#
#   bench/remote.sh [--quick] [--relay-only|--browser-only]
#
# 1. Relay capacity: `relay_load` (crates/haetae-remote/examples) starts a relay and its
#    simulated agent/customer pairs on loopback (Rust client), pairs them by code and has each
#    customer send 4 KiB sealed-frame-sized messages at 30/s (a ~1 Mbit/s screen stream) that
#    its agent answers. The round trip crosses the relay twice, so half of it bounds the
#    latency one relay hop adds (it also holds the clients' own scheduling: they share the
#    two cores with the relay). Rows: 1 session (the floor), 250, 500 (the target) and an
#    unpaced 50-session throughput run.
# 2. Glass to glass (bench/remote-g2g.mjs): two headless Chromium instances against
#    `haetae up`; the customer's tab shows a counter as black/white blocks, the agent's canvas
#    is read back every animation frame; p50/p95 latency and the bitrate through the relay at
#    720p and 1080p, for a static page and a scrolling document.
#
# Targets (issue 10): >= 500 sessions with p99 added relay latency < 5 ms; p50 <= 50 ms at
# 720p on loopback; a static page <= 50 kbit/s. Figures move with the machine's other load:
# run it on a quiet machine. --quick: shorter runs (a smoke test that the bench works).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 relay=1 browser=1
for a in "$@"; do
  case "$a" in
    --quick) quick=1 ;;
    --relay-only) browser=0 ;;
    --browser-only) relay=0 ;;
    *) echo "usage: bench/remote.sh [--quick] [--relay-only|--browser-only]" >&2; exit 2 ;;
  esac
done
frames=300; seconds=8
if [ "$quick" = 1 ]; then frames=90; seconds=4; fi
profile=${HAETAE_BENCH_PROFILE:-release}
flag=--release; [ "$profile" = debug ] && flag=
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"

if [ "$relay" = 1 ]; then
  cargo build --locked $flag -p haetae-remote --example relay_load >&2
  bin=target/$profile/examples/relay_load
  printf '\n## Relay capacity (%s frames per session)\n\n' "$frames"
  printf '| sessions | frame | rate | forwarded MB/s | round trip p50 | p99 | added per hop p99 (<= rtt/2) | kept pace |\n|---|---|---|---|---|---|---|---|\n'
  for row in "1 4096 30" "250 4096 30" "500 4096 30" "50 65536 0"; do
    set -- $row
    start=$(date +%s.%N)
    line=$("$bin" "$1" "$frames" "$2" "$3")
    took=$(echo "$(date +%s.%N) - $start" | bc)
    echo "$line" >"$out/relay-$1-$3.txt"
    mbs=$(sed -E 's/.*= ([0-9.]+) MB\/s.*/\1/' <<<"$line")
    p50=$(sed -E 's/.*p50 ([0-9.]+[µmn]?s).*/\1/' <<<"$line")
    p99=$(sed -E 's/.*p99 ([0-9.]+[µmn]?s).*/\1/' <<<"$line")
    ms=$(python3 -c "import re,sys;v,u=re.match(r'([0-9.]+)(µs|ms|ns|s)',sys.argv[1]).groups();f={'ns':1e-6,'µs':1e-3,'ms':1,'s':1e3}[u];print(f'{float(v)*f/2:.2f} ms')" "$p99")
    pace=n/a
    if [ "$3" != 0 ]; then
      # Paced: frames/rate seconds of sending plus pairing; more than 20 % over means the
      # relay (or the clients) fell behind.
      pace=$(python3 -c "import sys;t=float(sys.argv[1]);need=int(sys.argv[2])/int(sys.argv[3]);print('yes' if t<need*1.2+int(sys.argv[4])*0.002+1 else f'no ({t:.1f} s for {need:.0f} s)')" "$took" "$frames" "$3" "$1")
    fi
    printf '| %s | %s B | %s/s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$( [ "$3" = 0 ] && echo unpaced || echo "$3")" "$mbs" "$p50" "$p99" "$ms" "$pace"
  done
fi

if [ "$browser" = 1 ]; then
  BROWSER=${HAETAE_TEST_BROWSER:-/usr/bin/chromium}
  if [ ! -x "$BROWSER" ]; then
    echo "bench/remote.sh: no Chromium at $BROWSER (HAETAE_TEST_BROWSER); skipping glass-to-glass" >&2
    exit 0
  fi
  [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error
  cargo build --locked $flag -p haetae >&2
  printf '\n## Glass to glass (%s s per scenario, headless Chromium, software H.264)\n\n' "$seconds"
  HAETAE_UP_BINARY=target/$profile/haetae HAETAE_TEST_BROWSER=$BROWSER node bench/remote-g2g.mjs "$seconds" >"$out/g2g.jsonl"
  printf '| scenario | resolution | frames/s at the agent | kbit/s (relay -> agent) | counter values | p50 ms | p95 ms |\n|---|---|---|---|---|---|---|\n'
  python3 - "$out/g2g.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    dash = lambda v: '-' if v is None else v
    print(f"| {r['scenario']} | {r['resolution']} | {r['fps']} | {r['kbit_s']} | {r['values']} | {dash(r['p50_ms'])} | {dash(r['p95_ms'])} |")
EOF
fi
