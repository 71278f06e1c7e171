#!/usr/bin/env bash
# bench/gateway.sh — the gateway against its peers, in one run, on the same machine and the
# same backend (crates/haetae-gateway/examples/bench-backend.rs, a tiny hyper server):
#
#   direct          wrk -> backend
#   nginx           wrk -> nginx (plain reverse proxy, keep-alive upstream) -> backend
#   nginx+modsec    wrk -> nginx + ModSecurity 3 + OWASP CRS 3.3.4 (SecRuleEngine On) -> backend
#   haetae          wrk -> haetae gateway, no filters -> backend
#   haetae+chain    wrk -> haetae gateway, device-info + restrict -> backend; device-info writes a
#                   transaction-log event for every request (sample_rate 1.0, the default)
#   haetae+chain10  the same chain with the transaction log sampled at 10 %
#   haetae+std      issue 7's full standard chain, examples/gateway-standard.toml (device-info,
#                   restrict, e2e-fields, injection, single-session, fds, upload-inspect,
#                   security-headers) with only its addresses changed
#   haetae+wasm     haetae+chain plus one Proxy-Wasm filter (examples/wasm/c/block_header.c,
#                   built with clang for wasm32-wasi; configured with a pattern the bench
#                   requests never carry, so every request runs the whole Wasm lifecycle and
#                   passes): its cost over haetae+chain is the Wasm filter's (issue 12 target:
#                   <= 5 us p50 per request)
#
# for a GET and a 1 KiB form POST, and prints req/s, p50 and p99 latency and the ratios.
# Needs the Debian packages: nginx libnginx-mod-http-modsecurity modsecurity-crs wrk, and for
# haetae+wasm: clang lld wasi-libc libclang-rt-dev-wasm32 (or WASM_FILTER=<a built .wasm>).
#
# The same CPU budget for every proxy: the run is repeated per CPU mode (CPU_MODES):
#   1   every proxy (nginx, haetae) pinned to CPU 1 with one worker (nginx worker_processes 1,
#       haetae TOKIO_WORKER_THREADS=1); wrk and the backend pinned to CPU 0, so the proxy
#       under test has exactly one core and nothing else competes for it.
#   2   nothing pinned; nginx with 2 workers, haetae with 2 worker threads; wrk and the
#       backend share the same two cores (what each does with the whole machine).
#
# Knobs (environment): DURATION (default 10s), CONNECTIONS (32), WRK_THREADS (1),
# CPU_MODES ("1 2"; "1" alone halves the run time), HAETAE and BACKEND (prebuilt binaries).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
CPU_MODES=${CPU_MODES:-1 2}
BASE_PORT=${BASE_PORT:-19000}
P_BACKEND=$BASE_PORT
P_NGINX=$((BASE_PORT + 1))
P_MODSEC=$((BASE_PORT + 2))
P_HAETAE=$((BASE_PORT + 3))
P_CHAIN=$((BASE_PORT + 4))
P_CHAIN10=$((BASE_PORT + 5))
P_STD=$((BASE_PORT + 6))
P_WASM=$((BASE_PORT + 7))

# `bash bench/gateway.sh callgrind` counts instructions per request instead (deterministic on
# a loaded machine): see callgrind_mode below.
MODE=${1:-wrk}
if [ "$MODE" = callgrind ]; then
  for tool in valgrind python3; do
    command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool is missing (apt-get install valgrind python3)" >&2; exit 2; }
  done
else
  for tool in wrk nginx taskset; do
    command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool is missing (apt-get install nginx libnginx-mod-http-modsecurity modsecurity-crs wrk)" >&2; exit 2; }
  done
  [ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || { echo "bench/gateway.sh: libnginx-mod-http-modsecurity is missing" >&2; exit 2; }
  [ -f /usr/share/modsecurity-crs/owasp-crs.load ] || { echo "bench/gateway.sh: modsecurity-crs is missing" >&2; exit 2; }
fi

# HAETAE and BACKEND may name prebuilt binaries; otherwise both are built (release) here.
if [ -z "${HAETAE:-}" ] || [ -z "${BACKEND:-}" ]; then
  echo "building (release)..." >&2
  cargo build --release --quiet -p haetae --bin haetae
  cargo build --release --quiet -p haetae-gateway --example bench-backend
fi
HAETAE=${HAETAE:-$ROOT/target/release/haetae}
BACKEND=${BACKEND:-$ROOT/target/release/examples/bench-backend}

WORK=$(mktemp -d /tmp/haetae-bench.XXXXXX)
# The Wasm filter of haetae+wasm: WASM_FILTER, or the C example built here.
if [ -z "${WASM_FILTER:-}" ]; then
  "$ROOT/examples/wasm/build.sh" "$WORK/wasm" c >&2
  WASM_FILTER=$WORK/wasm/block_header.wasm
fi
PIDS=()
stop_all() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  # nginx removes its pid file on exit; wait for it so the next start does not collide.
  for _ in $(seq 1 50); do [ -f "$WORK/nginx.pid" ] || break; sleep 0.1; done
  PIDS=()
}
cleanup() {
  stop_all
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/gateway.sh: nothing listens on port $1; see $WORK/*.log" >&2
  exit 1
}

# --- nginx, plain and with ModSecurity + CRS ----------------------------------------------
cat >"$WORK/modsec.conf" <<EOF
Include /etc/nginx/modsecurity.conf
SecRuleEngine On
SecStatusEngine Off
SecAuditEngine RelevantOnly
SecAuditLog $WORK/modsec_audit.log
SecTmpDir $WORK
SecDataDir $WORK
# owasp-crs.load uses IncludeOptional, which libmodsecurity 3 does not know: the same files.
Include /etc/modsecurity/crs/crs-setup.conf
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include /usr/share/modsecurity-crs/rules/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
EOF
cp /etc/nginx/unicode.mapping "$WORK/unicode.mapping"
mkdir -p "$WORK/nginx-tmp"
write_nginx() { # workers
  cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes $1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$P_MODSEC;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec.conf;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
}

# --- haetae, without filters and with the standard chain ------------------------------------
write_haetae() { # port chain(yes|no|wasm) [sample_rate]
  local port=$1 chain=$2 rate=${3:-1.0} file="$WORK/haetae-$1.toml" filters='"device", "restrict"'
  [ "$chain" = wasm ] && filters='"device", "restrict", "wasm"'
  rm -rf "$WORK/haetae-data-$port"
  cat >"$file" <<EOF
data_dir = "$WORK/haetae-data-$port"
[log]
# Events (the decision events and device-info's per-request transaction log) are written
# as JSON lines to the log, which goes to a file: they really leave the process.
level = "warn,haetae::event=info"
format = "json"
[gateway]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$((port + 100))"
heartbeat_interval_ms = 60000
[policy]
version = 1
[[policy.services]]
id = "bank"
upstream = "http://127.0.0.1:$P_BACKEND"
EOF
  if [ "$chain" != no ]; then
    cat >>"$file" <<EOF
[[policy.filters]]
id = "device"
kind = "device-info"
config = { sample_rate = $rate }
[[policy.filters]]
id = "restrict"
kind = "restrict"
config = { device_lists = ["restricted-devices"], users = ["blocked-user"], user_header = "X-User-Id", notice_path = "/notice" }
[[policy.mappings]]
service = "bank"
filters = [$filters]
[policy.lists.restricted-devices]
kind = "device"
entries = ["BLOCKED-DEVICE-1"]
EOF
  fi
  if [ "$chain" = wasm ]; then
    cat >>"$file" <<EOF
[[policy.filters]]
id = "wasm"
kind = "wasm"
config = { module = "$WASM_FILTER", configuration = "user-agent=sqlmap", instances = 2 }
EOF
  fi
  echo "$file"
}

# write_haetae_std PORT: examples/gateway-standard.toml on PORT in front of the bench backend,
# its events logged as JSON lines like the other chains.
write_haetae_std() {
  local port=$1 file=$WORK/haetae-std-$1.toml
  sed -e "s|^data_dir = .*|data_dir = \"$WORK/haetae-data-std-$port\"|" \
      -e "s|^listen = \"127.0.0.1:8080\"|listen = \"127.0.0.1:$port\"|" \
      -e "s|^admin_listen = \"[^\"]*\"|admin_listen = \"127.0.0.1:$((port + 100))\"|" \
      -e "s|^upstream = \"http://127.0.0.1:9000\"|upstream = \"http://127.0.0.1:$P_BACKEND\"|" \
      -e "s|key_dir = \"haetae-data/gateway/e2e-keys\"|key_dir = \"$WORK/haetae-data-std-$port/e2e-keys\"|" \
      "$ROOT/examples/gateway-standard.toml" >"$file"
  printf '\n[log]\nlevel = "warn,haetae::event=info"\nformat = "json"\n' >>"$file"
  echo "$file"
}

# start_all MODE: the backend, nginx (plain and ModSecurity) and the three haetae gateways,
# with MODE's CPU budget (see the top of this file).
start_all() {
  local mode=$1 load_cpu=() proxy_cpu=()
  if [ "$mode" = 1 ]; then
    load_cpu=(taskset -c 0)
    proxy_cpu=(taskset -c 1)
  fi
  "${load_cpu[@]}" "$BACKEND" "127.0.0.1:$P_BACKEND" 2>"$WORK/backend.log" &
  PIDS+=($!)
  write_nginx "$mode"
  (cd "$WORK" && "${proxy_cpu[@]}" nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon on;')
  TOKIO_WORKER_THREADS=$mode "${proxy_cpu[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_HAETAE" no)" 2>"$WORK/haetae.log" &
  PIDS+=($!)
  TOKIO_WORKER_THREADS=$mode "${proxy_cpu[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN" yes)" 2>"$WORK/haetae-chain.log" &
  PIDS+=($!)
  TOKIO_WORKER_THREADS=$mode "${proxy_cpu[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN10" yes 0.1)" 2>"$WORK/haetae-chain10.log" &
  PIDS+=($!)
  TOKIO_WORKER_THREADS=$mode "${proxy_cpu[@]}" "$HAETAE" gateway --config "$(write_haetae_std "$P_STD")" 2>"$WORK/haetae-std.log" &
  PIDS+=($!)
  TOKIO_WORKER_THREADS=$mode "${proxy_cpu[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_WASM" wasm)" 2>"$WORK/haetae-wasm.log" &
  PIDS+=($!)
  for p in $P_BACKEND $P_NGINX $P_MODSEC $P_HAETAE $P_CHAIN $P_CHAIN10 $P_STD $P_WASM; do wait_port "$p"; done
  WRK=("${load_cpu[@]}" wrk)
}

# --- callgrind mode ---------------------------------------------------------------------------
# Instructions per request of each proxy (user space, every thread), 1 worker: the proxy runs
# under `valgrind --tool=callgrind`; a Python client sends CALLGRIND_REQUESTS (2000) GETs one
# after the other on one keep-alive connection, after a 20-request warm-up on another; a run
# with 0 requests is subtracted (start-up, warm-up, shutdown). Kernel time (syscalls) is not
# counted.
callgrind_mode() {
  local n=${CALLGRIND_REQUESTS:-2000}
  cat >"$WORK/client.py" <<'PY'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"User-Agent": "MyBank/3.2.1 (Linux; Android 14) HaetaeDevice/DEV-12345", "X-User-Id": "kim-1234"}
for _ in range(n):
    c.request("GET", "/bank/transfer", headers=h)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
PY
  cat >"$WORK/nginx-cg.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx-cg.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX
  "$BACKEND" "127.0.0.1:$P_BACKEND" 2>"$WORK/backend.log" &
  PIDS+=($!)
  wait_port "$P_BACKEND"
  # measure NAME PORT STOP-SIGNAL COMMAND...: prints NAME and instructions per request.
  measure() {
    local name=$1 port=$2 sig=$3 count out pid total total0=0
    shift 3
    for count in 0 "$n"; do
      out="$WORK/callgrind.$name.$count"
      TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$WORK/cg-$name.log" 2>&1 &
      pid=$!
      wait_port "$port"
      python3 "$WORK/client.py" "$port" 20
      python3 "$WORK/client.py" "$port" "$count"
      kill "-$sig" "$pid"
      wait "$pid" || true
      total=$(awk '/^summary:/ {print $2}' "$out")
      if [ "$count" = 0 ]; then
        total0=$total
      else
        printf '%-15s %12s\n' "$name" "$(((total - total0) / n))"
      fi
    done
  }
  echo "instructions per request (callgrind, 1 worker, $n sequential keep-alive GETs)"
  if command -v nginx >/dev/null; then
    mkdir -p "$WORK/nginx-tmp"
    measure nginx "$P_NGINX" QUIT nginx -p "$WORK" -c "$WORK/nginx-cg.conf" -e "$WORK/nginx-error.log" -g 'daemon off; master_process off;'
  fi
  measure haetae "$P_HAETAE" INT "$HAETAE" gateway --config "$(write_haetae "$P_HAETAE" no)"
  measure haetae+chain "$P_CHAIN" INT "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN" yes)"
  measure haetae+chain10 "$P_CHAIN10" INT "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN10" yes 0.1)"
  measure haetae+std "$P_STD" INT "$HAETAE" gateway --config "$(write_haetae_std "$P_STD")"
  measure haetae+wasm "$P_WASM" INT "$HAETAE" gateway --config "$(write_haetae "$P_WASM" wasm)"
}
if [ "$MODE" = callgrind ]; then
  callgrind_mode
  exit 0
fi

# --- the load ------------------------------------------------------------------------------
FORM=$(python3 -c 'import sys; s="account=110-234-567890&amount=150000&memo="; s+="x"*(1024-len(s)); sys.stdout.write(s)')
cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = "$FORM"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["User-Agent"] = "MyBank/3.2.1 (Linux; Android 14) HaetaeDevice/DEV-12345"
wrk.headers["X-User-Id"] = "kim-1234"
EOF
cat >"$WORK/get.lua" <<EOF
wrk.headers["User-Agent"] = "MyBank/3.2.1 (Linux; Android 14) HaetaeDevice/DEV-12345"
wrk.headers["X-User-Id"] = "kim-1234"
EOF

# to_ms "113.00us" -> 0.113
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0; u = v; sub(/^[0-9.]+/, "", u);
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
    printf "%.3f", n }'
}

declare -A RPS P50 P99 NON2XX EVENTS
run() { # mode name kind url
  local mode=$1 name=$2 kind=$3 url=$4 out k=$1.$2.$3
  # A short warm-up fills connection pools and caches.
  "${WRK[@]}" -t1 -c"$CONNECTIONS" -d2s -s "$WORK/$kind.lua" "$url" >/dev/null
  out=$("${WRK[@]}" -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/$kind.lua" "$url")
  RPS[$k]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P50[$k]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  P99[$k]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  NON2XX[$k]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "  [cpu mode $mode] $name $kind: ${RPS[$k]} req/s" >&2
}

TARGETS=(direct nginx nginx+modsec haetae haetae+chain haetae+chain10 haetae+std haetae+wasm)
declare -A URL=(
  [direct]="http://127.0.0.1:$P_BACKEND/bank/transfer"
  [nginx]="http://127.0.0.1:$P_NGINX/bank/transfer"
  [nginx+modsec]="http://127.0.0.1:$P_MODSEC/bank/transfer"
  [haetae]="http://127.0.0.1:$P_HAETAE/bank/transfer"
  [haetae+chain]="http://127.0.0.1:$P_CHAIN/bank/transfer"
  [haetae+chain10]="http://127.0.0.1:$P_CHAIN10/bank/transfer"
  [haetae+std]="http://127.0.0.1:$P_STD/bank/transfer"
  [haetae+wasm]="http://127.0.0.1:$P_WASM/bank/transfer"
)
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "running: ${DURATION} per measurement, $CONNECTIONS connections, wrk threads $WRK_THREADS, CPU modes: $CPU_MODES, $(nproc) cores, load average $START_LOAD" >&2
for mode in $CPU_MODES; do
  start_all "$mode"
  for kind in get post; do
    for t in "${TARGETS[@]}"; do run "$mode" "$t" "$kind" "${URL[$t]}"; done
  done
  # Give the log writer a moment, then count the transaction events that left the process.
  sleep 1
  EVENTS[$mode]=$(grep -c 'device-info.transaction' "$WORK/haetae-chain.log" || true)
  stop_all
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }

echo
echo "haetae gateway bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION} x ${CONNECTIONS} connections, load average at start $START_LOAD, at end $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in $CPU_MODES; do
  if [ "$mode" = 1 ]; then
    what="each proxy pinned to CPU 1 with 1 worker (nginx 1 worker process, haetae 1 worker thread); wrk and backend on CPU 0"
  else
    what="nothing pinned; nginx 2 worker processes, haetae 2 worker threads; wrk and backend share the cores"
  fi
  for kind in get post; do
    label=$([ "$kind" = get ] && echo "GET" || echo "POST 1 KiB form")
    echo
    echo "## $label — CPU mode $mode: $what"
    printf '%-15s %10s %9s %9s %8s %10s %10s %12s\n' target req/s p50_ms p99_ms non2xx x_nginx x_modsec p99-nginx_ms
    for t in "${TARGETS[@]}"; do
      k=$mode.$t.$kind
      printf '%-15s %10s %9s %9s %8s %10s %10s %12s\n' "$t" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${NON2XX[$k]:-0}" \
        "$(ratio "${RPS[$k]}" "${RPS[$mode.nginx.$kind]}")" "$(ratio "${RPS[$k]}" "${RPS[$mode.nginx+modsec.$kind]}")" \
        "$(diffms "${P99[$k]}" "${P99[$mode.nginx.$kind]}")"
    done
  done
  echo
  echo "CPU mode $mode: haetae+chain wrote ${EVENTS[$mode]} transaction-log events to its log file."
done
echo
echo "x_nginx, x_modsec: throughput relative to nginx plain proxy and to nginx+ModSecurity+CRS in the same CPU mode."
echo "Targets (issue 6): haetae >= 1.0 x_nginx; haetae+chain >= 0.8 x_nginx and >= 20 x_modsec; p99-nginx <= 1 ms."
echo "Target (issue 7): haetae+std, the full standard chain, keeps issue 6's chain targets."
for mode in $CPU_MODES; do
  echo "Wasm filter (issue 12, target <= 0.005 ms): CPU mode $mode, p50 of haetae+wasm minus haetae+chain: GET $(diffms "${P50[$mode.haetae+wasm.get]}" "${P50[$mode.haetae+chain.get]}") ms, POST $(diffms "${P50[$mode.haetae+wasm.post]}" "${P50[$mode.haetae+chain.post]}") ms"
done
