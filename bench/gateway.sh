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
#
# for a GET and a 1 KiB form POST, and prints req/s, p50 and p99 latency and the ratios.
# Needs the Debian packages: nginx libnginx-mod-http-modsecurity modsecurity-crs wrk.
#
# Knobs (environment): DURATION (default 10s), CONNECTIONS (32), WRK_THREADS (1),
# NGINX_WORKERS (1, as in the issue's anchors), HAETAE_WORKER_THREADS (unset: one per core).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
WRK_THREADS=${WRK_THREADS:-1}
NGINX_WORKERS=${NGINX_WORKERS:-1}
BASE_PORT=${BASE_PORT:-19000}
P_BACKEND=$BASE_PORT
P_NGINX=$((BASE_PORT + 1))
P_MODSEC=$((BASE_PORT + 2))
P_HAETAE=$((BASE_PORT + 3))
P_CHAIN=$((BASE_PORT + 4))
P_CHAIN10=$((BASE_PORT + 5))

for tool in wrk nginx; do
  command -v "$tool" >/dev/null || { echo "bench/gateway.sh: $tool is missing (apt-get install nginx libnginx-mod-http-modsecurity modsecurity-crs wrk)" >&2; exit 2; }
done
[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || { echo "bench/gateway.sh: libnginx-mod-http-modsecurity is missing" >&2; exit 2; }
[ -f /usr/share/modsecurity-crs/owasp-crs.load ] || { echo "bench/gateway.sh: modsecurity-crs is missing" >&2; exit 2; }

echo "building (release)..." >&2
cargo build --release --quiet -p haetae -p haetae-gateway --example bench-backend
HAETAE=$ROOT/target/release/haetae
BACKEND=$ROOT/target/release/examples/bench-backend

WORK=$(mktemp -d /tmp/haetae-bench.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
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

# --- the backend -------------------------------------------------------------------------
"$BACKEND" "127.0.0.1:$P_BACKEND" 2>"$WORK/backend.log" &
PIDS+=($!)

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
cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
worker_processes $NGINX_WORKERS;
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
(cd "$WORK" && nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon on;')

# --- haetae, without filters and with the standard chain ------------------------------------
write_haetae() { # port chain(yes|no) [sample_rate]
  local port=$1 chain=$2 rate=${3:-1.0} file="$WORK/haetae-$1.toml"
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
  if [ "$chain" = yes ]; then
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
filters = ["device", "restrict"]
[policy.lists.restricted-devices]
kind = "device"
entries = ["BLOCKED-DEVICE-1"]
EOF
  fi
  echo "$file"
}
HAETAE_ENV=()
[ -n "${HAETAE_WORKER_THREADS:-}" ] && HAETAE_ENV+=("TOKIO_WORKER_THREADS=$HAETAE_WORKER_THREADS")
env "${HAETAE_ENV[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_HAETAE" no)" 2>"$WORK/haetae.log" &
PIDS+=($!)
env "${HAETAE_ENV[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN" yes)" 2>"$WORK/haetae-chain.log" &
PIDS+=($!)
env "${HAETAE_ENV[@]}" "$HAETAE" gateway --config "$(write_haetae "$P_CHAIN10" yes 0.1)" 2>"$WORK/haetae-chain10.log" &
PIDS+=($!)

for p in $P_BACKEND $P_NGINX $P_MODSEC $P_HAETAE $P_CHAIN $P_CHAIN10; do wait_port "$p"; done

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

declare -A RPS P50 P99 NON2XX
run() { # name kind url
  local name=$1 kind=$2 url=$3 out
  # A short warm-up fills connection pools and caches.
  wrk -t1 -c"$CONNECTIONS" -d2s -s "$WORK/$kind.lua" "$url" >/dev/null
  out=$(wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/$kind.lua" "$url")
  RPS[$name.$kind]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  P50[$name.$kind]=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
  P99[$name.$kind]=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
  NON2XX[$name.$kind]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
  echo "  $name $kind: ${RPS[$name.$kind]} req/s" >&2
}

TARGETS=(direct nginx nginx+modsec haetae haetae+chain haetae+chain10)
declare -A URL=(
  [direct]="http://127.0.0.1:$P_BACKEND/bank/transfer"
  [nginx]="http://127.0.0.1:$P_NGINX/bank/transfer"
  [nginx+modsec]="http://127.0.0.1:$P_MODSEC/bank/transfer"
  [haetae]="http://127.0.0.1:$P_HAETAE/bank/transfer"
  [haetae+chain]="http://127.0.0.1:$P_CHAIN/bank/transfer"
  [haetae+chain10]="http://127.0.0.1:$P_CHAIN10/bank/transfer"
)
echo "running: ${DURATION} per measurement, $CONNECTIONS connections, wrk threads $WRK_THREADS, nginx workers $NGINX_WORKERS, $(nproc) cores" >&2
for kind in get post; do
  for t in "${TARGETS[@]}"; do run "$t" "$kind" "${URL[$t]}"; done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
diffms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.3f", a - b }'; }

echo
echo "haetae gateway bench — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, ${DURATION} x ${CONNECTIONS} connections"
for kind in get post; do
  label=$([ "$kind" = get ] && echo "GET" || echo "POST 1 KiB form")
  echo
  echo "## $label"
  printf '%-15s %10s %9s %9s %8s %10s %10s %12s\n' target req/s p50_ms p99_ms non2xx x_nginx x_modsec p99-nginx_ms
  for t in "${TARGETS[@]}"; do
    k=$t.$kind
    printf '%-15s %10s %9s %9s %8s %10s %10s %12s\n' "$t" "${RPS[$k]}" "${P50[$k]}" "${P99[$k]}" "${NON2XX[$k]:-0}" \
      "$(ratio "${RPS[$k]}" "${RPS[nginx.$kind]}")" "$(ratio "${RPS[$k]}" "${RPS[nginx+modsec.$kind]}")" \
      "$(diffms "${P99[$k]}" "${P99[nginx.$kind]}")"
  done
done
echo
echo "haetae+chain wrote $(grep -c 'device-info.transaction' "$WORK/haetae-chain.log" || true) transaction-log events to its log file during the run."
echo "x_nginx, x_modsec: throughput relative to nginx plain proxy and to nginx+ModSecurity+CRS."
echo "Targets (issue 6): haetae >= 1.0 x_nginx; haetae+chain >= 0.8 x_nginx and >= 20 x_modsec; p99-nginx <= 1 ms."
