#!/usr/bin/env bash
# bench/gateway-instr.sh — CPU cost per request of the haetae gateway against nginx, counted
# in instructions (valgrind --tool=callgrind), which, unlike req/s, does not depend on what
# else the machine is doing.
#
# Each proxy runs under callgrind with one worker (nginx: worker_processes 1, no master;
# haetae: TOKIO_WORKER_THREADS=1) in front of the bench backend
# (crates/haetae-gateway/examples/bench-backend.rs, not under valgrind). A small Python
# client sends REQUESTS requests one after the other on one keep-alive connection, after a
# 20-request warm-up on another; a run with the warm-up only is subtracted, so start-up,
# warm-up and shutdown cancel out. Counted: user-space instructions of every thread of the
# proxy (haetae's event-log writer thread included). Not counted: the kernel (syscalls).
#
# Targets and requests:
#   nginx          plain reverse proxy, keep-alive upstream (as bench/gateway.sh)
#   haetae         no filters
#   haetae+chain   issue 6's standard chain: device-info + restrict, transaction log on
#                  every request (as bench/gateway.sh)
#   haetae+std     issue 7's full standard chain, examples/gateway-standard.toml (STD=0 skips)
# each for a GET and a 1 KiB form POST (application/x-www-form-urlencoded), the same
# requests bench/gateway.sh sends with wrk.
#
# Prints instructions per request and the ratio to nginx. Knobs (environment): REQUESTS
# (default 2000), STD (1), TARGETS (a subset, e.g. "nginx haetae"), KEEP (a directory: the callgrind files are kept there, for
# callgrind_annotate), HAETAE and BACKEND (prebuilt binaries; otherwise built, release).
# Needs valgrind, python3 and nginx (Debian packages valgrind python3 nginx).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
REQUESTS=${REQUESTS:-2000}
STD=${STD:-1}
BASE_PORT=${BASE_PORT:-19500}
P_BACKEND=$BASE_PORT
P_PROXY=$((BASE_PORT + 1))

for tool in valgrind python3 nginx; do
  command -v "$tool" >/dev/null || { echo "bench/gateway-instr.sh: $tool is missing (apt-get install valgrind python3 nginx)" >&2; exit 2; }
done
if [ -z "${HAETAE:-}" ] || [ -z "${BACKEND:-}" ]; then
  echo "building (release)..." >&2
  cargo build --release --quiet -p haetae --bin haetae
  cargo build --release --quiet -p haetae-gateway --example bench-backend
fi
HAETAE=${HAETAE:-$ROOT/target/release/haetae}
BACKEND=${BACKEND:-$ROOT/target/release/examples/bench-backend}

WORK=$(mktemp -d /tmp/haetae-instr.XXXXXX)
KEEP=${KEEP:-}
[ -n "$KEEP" ] && mkdir -p "$KEEP"
BACKEND_PID=
cleanup() {
  [ -n "$BACKEND_PID" ] && kill "$BACKEND_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 600); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/gateway-instr.sh: nothing listens on port $1; see $WORK/*.log" >&2
  exit 1
}

# client.py PORT KIND N: N requests of KIND (get, post) on one keep-alive connection.
cat >"$WORK/client.py" <<'PY'
import http.client, sys
port, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
form = "account=110-234-567890&amount=150000&memo="
form = (form + "x" * (1024 - len(form))).encode()
h = {"User-Agent": "MyBank/3.2.1 (Linux; Android 14) HaetaeDevice/DEV-12345", "X-User-Id": "kim-1234"}
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    if kind == "post":
        c.request("POST", "/bank/transfer", body=form,
                  headers=dict(h, **{"Content-Type": "application/x-www-form-urlencoded"}))
    else:
        c.request("GET", "/bank/transfer", headers=h)
    r = c.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"{kind}: status {r.status}")
PY

mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx.pid;
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
    listen 127.0.0.1:$P_PROXY;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
NGINX

# haetae_config NAME: the gateway's configuration file for target NAME.
haetae_config() {
  local name=$1 file=$WORK/$1.toml
  if [ "$name" = haetae+std ]; then
    sed -e "s|^data_dir = .*|data_dir = \"$WORK/data-$name\"|" \
        -e "s|^listen = \"127.0.0.1:8080\"|listen = \"127.0.0.1:$P_PROXY\"|" \
        -e "s|^admin_listen = \"[^\"]*\"|admin_listen = \"127.0.0.1:$((P_PROXY + 100))\"|" \
        -e "s|^upstream = \"http://127.0.0.1:9000\"|upstream = \"http://127.0.0.1:$P_BACKEND\"|" \
        -e "s|key_dir = \"haetae-data/gateway/e2e-keys\"|key_dir = \"$WORK/data-$name/e2e-keys\"|" \
        "$ROOT/examples/gateway-standard.toml" >"$file"
    printf '\n[log]\nlevel = "warn,haetae::event=info"\nformat = "json"\n' >>"$file"
    echo "$file"
    return
  fi
  cat >"$file" <<EOF
data_dir = "$WORK/data-$name"
[log]
level = "warn,haetae::event=info"
format = "json"
[gateway]
listen = "127.0.0.1:$P_PROXY"
admin_listen = "127.0.0.1:$((P_PROXY + 100))"
heartbeat_interval_ms = 600000
[policy]
version = 1
[[policy.services]]
id = "bank"
upstream = "http://127.0.0.1:$P_BACKEND"
EOF
  if [ "$name" = haetae+chain ]; then
    cat >>"$file" <<EOF
[[policy.filters]]
id = "device"
kind = "device-info"
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

# run NAME KIND COUNT: total instructions of one run of proxy NAME serving COUNT requests
# of KIND after the warm-up.
run() {
  local name=$1 kind=$2 count=$3 out=$WORK/callgrind.$1.$2.$3 pid sig
  local cmd
  if [ "$name" = nginx ]; then
    sig=QUIT
    cmd=(nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon off; master_process off;')
  else
    sig=INT
    rm -rf "$WORK/data-$name"
    cmd=("$HAETAE" gateway --config "$(haetae_config "$name")")
  fi
  TOKIO_WORKER_THREADS=1 valgrind --tool=callgrind --callgrind-out-file="$out" "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
  pid=$!
  wait_port "$P_PROXY"
  python3 "$WORK/client.py" "$P_PROXY" "$kind" 20
  [ "$count" -gt 0 ] && python3 "$WORK/client.py" "$P_PROXY" "$kind" "$count"
  kill "-$sig" "$pid"
  wait "$pid" || true
  # Wait for the port to be free for the next run.
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$P_PROXY") 2>/dev/null || break; sleep 0.1; done
  [ -n "$KEEP" ] && cp "$out" "$KEEP/"
  awk '/^summary:/ {print $2}' "$out"
}

"$BACKEND" "127.0.0.1:$P_BACKEND" 2>"$WORK/backend.log" &
BACKEND_PID=$!
wait_port "$P_BACKEND"

if [ -n "${TARGETS:-}" ]; then
  read -r -a TARGETS <<<"$TARGETS"
else
  TARGETS=(nginx haetae haetae+chain)
  [ "$STD" = 1 ] && TARGETS+=(haetae+std)
fi
declare -A PER
for t in "${TARGETS[@]}"; do
  for kind in get post; do
    base=$(run "$t" "$kind" 0)
    total=$(run "$t" "$kind" "$REQUESTS")
    PER[$t.$kind]=$(((total - base) / REQUESTS))
    echo "  $t $kind: ${PER[$t.$kind]} instructions/request" >&2
  done
done

ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
echo
echo "instructions per request — callgrind, 1 worker, $REQUESTS sequential keep-alive requests, $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '%-14s %12s %8s %14s %8s\n' target GET x_nginx "POST 1KiB" x_nginx
for t in "${TARGETS[@]}"; do
  printf '%-14s %12s %8s %14s %8s\n' "$t" "${PER[$t.get]}" "$(ratio "${PER[$t.get]}" "${PER[nginx.get]:-}")" \
    "${PER[$t.post]}" "$(ratio "${PER[$t.post]}" "${PER[nginx.post]:-}")"
done
echo "x_nginx: instructions relative to nginx (lower is cheaper; issue 6: haetae <= 1.0, haetae+chain <= 1.25 for 0.8x throughput)"
