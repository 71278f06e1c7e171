#!/usr/bin/env bash
# bench/waf-eval.sh — detection of haetae's `injection` filter against nginx + ModSecurity 3 +
# OWASP CRS, in one run, on the same requests (issue 7):
#
#   modsec-pl1 / modsec-pl2   nginx + libmodsecurity 3 + CRS 3.3.4, SecRuleEngine On,
#                             tx.paranoia_level 1 / 2 (anomaly threshold 5, the default),
#                             tx.enforce_bodyproc_urlencoded 1: a body without Content-Type
#                             is parsed as a form (the regression tests send their bodies
#                             without one; without this CRS sees no ARGS in them at PL1 and
#                             its own tests fail — haetae reads such bodies as forms too)
#   haetae-pl1 / haetae-pl2   haetae gateway with the `injection` filter alone, mode enforce
#                             (block), paranoia 1 / 2
#
# all in front of the same backend (crates/haetae-gateway/examples/bench-backend.rs, 200 to
# everything). bench/waf-replay.py sends every stage of the CRS regression tests (YAML) to
# each and prints, per rule family (941 XSS, 942 SQLi, others), the attack stages and the
# negative stages that did not reach the backend.
#
# Needs: nginx libnginx-mod-http-modsecurity modsecurity-crs python3-yaml (Debian).
# Knobs: CORPUS (default ../shared/corpora/waf/crs-v3.3.4), PROFILE (release | debug;
# default release), BASE_PORT (19100), DUMP (a file for per-stage JSON lines), HAETAE and
# BACKEND (binaries built elsewhere; both skip the build), PROBE (the injection-probe example,
# for the text false-positive count at the end).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
CORPUS=${CORPUS:-$ROOT/../shared/corpora/waf/crs-v3.3.4}
PROFILE=${PROFILE:-release}
BASE_PORT=${BASE_PORT:-19100}
P_BACKEND=$BASE_PORT
P_MS1=$((BASE_PORT + 1))
P_MS2=$((BASE_PORT + 2))
P_H1=$((BASE_PORT + 3))
P_H2=$((BASE_PORT + 4))

[ -d "$CORPUS" ] || { echo "bench/waf-eval.sh: no corpus at $CORPUS (set CORPUS)" >&2; exit 2; }
command -v nginx >/dev/null || { echo "bench/waf-eval.sh: nginx is missing (apt-get install nginx libnginx-mod-http-modsecurity modsecurity-crs)" >&2; exit 2; }
[ -f /usr/lib/nginx/modules/ngx_http_modsecurity_module.so ] || { echo "bench/waf-eval.sh: libnginx-mod-http-modsecurity is missing" >&2; exit 2; }
[ -d /usr/share/modsecurity-crs/rules ] || { echo "bench/waf-eval.sh: modsecurity-crs is missing" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "bench/waf-eval.sh: python3-yaml is missing" >&2; exit 2; }
CRS_VERSION=$(dpkg-query -W -f='${Version}' modsecurity-crs 2>/dev/null || echo unknown)
case "$CRS_VERSION" in
  3.3.4*) ;;
  *) echo "bench/waf-eval.sh: modsecurity-crs is $CRS_VERSION, the corpus is for 3.3.4; the figures compare different rule sets" >&2 ;;
esac

# HAETAE=/path/to/haetae BACKEND=/path/to/bench-backend use binaries built elsewhere.
if [ -z "${HAETAE:-}" ] || [ -z "${BACKEND:-}" ]; then
  echo "building ($PROFILE)..." >&2
  if [ "$PROFILE" = release ]; then
    cargo build --release --quiet -p haetae
    cargo build --release --quiet -p haetae-gateway --example bench-backend --example injection-probe
  else
    cargo build --quiet -p haetae
    cargo build --quiet -p haetae-gateway --example bench-backend --example injection-probe
  fi
  HAETAE=$ROOT/target/$PROFILE/haetae
  BACKEND=$ROOT/target/$PROFILE/examples/bench-backend
  PROBE=$ROOT/target/$PROFILE/examples/injection-probe
fi

WORK=$(mktemp -d /tmp/haetae-waf-eval.XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 300); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/waf-eval.sh: nothing listens on port $1" >&2
  tail -n 20 "$WORK"/*.log >&2 || true
  exit 1
}

"$BACKEND" "127.0.0.1:$P_BACKEND" 2>"$WORK/backend.log" &
PIDS+=($!)

# --- nginx + ModSecurity + CRS at paranoia 1 and 2 ------------------------------------------
modsec_conf() { # paranoia
  cat >"$WORK/modsec-pl$1.conf" <<EOF
Include /etc/nginx/modsecurity.conf
SecRuleEngine On
SecStatusEngine Off
SecAuditEngine Off
SecTmpDir $WORK
SecDataDir $WORK
SecAction "id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=$1,setvar:tx.enforce_bodyproc_urlencoded=1"
# owasp-crs.load uses IncludeOptional, which libmodsecurity 3 does not know: the same files.
Include /etc/modsecurity/crs/crs-setup.conf
Include /etc/modsecurity/crs/REQUEST-900-EXCLUSION-RULES-BEFORE-CRS.conf
Include /usr/share/modsecurity-crs/rules/*.conf
Include /etc/modsecurity/crs/RESPONSE-999-EXCLUSION-RULES-AFTER-CRS.conf
EOF
}
modsec_conf 1
modsec_conf 2
cp /etc/nginx/unicode.mapping "$WORK/unicode.mapping"
mkdir -p "$WORK/nginx-tmp"
cat >"$WORK/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_http_modsecurity_module.so;
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
  upstream backend { server 127.0.0.1:$P_BACKEND; keepalive 16; }
  server {
    listen 127.0.0.1:$P_MS1;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec-pl1.conf;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$P_MS2;
    modsecurity on;
    modsecurity_rules_file $WORK/modsec-pl2.conf;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
(cd "$WORK" && nginx -p "$WORK" -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log" -g 'daemon on;')

# --- haetae with the injection filter at paranoia 1 and 2 -----------------------------------
haetae_conf() { # port paranoia
  cat >"$WORK/haetae-$1.toml" <<EOF
data_dir = "$WORK/haetae-data-$1"
[log]
level = "warn"
[gateway]
listen = "127.0.0.1:$1"
admin_listen = "127.0.0.1:$(($1 + 100))"
heartbeat_interval_ms = 60000
[policy]
version = 1
[[policy.services]]
id = "app"
upstream = "http://127.0.0.1:$P_BACKEND"
[[policy.filters]]
id = "injection"
kind = "injection"
mode = "enforce"
config = { paranoia = $2 }
[[policy.mappings]]
service = "app"
filters = ["injection"]
EOF
  echo "$WORK/haetae-$1.toml"
}
"$HAETAE" gateway --config "$(haetae_conf "$P_H1" 1)" 2>"$WORK/haetae-pl1.log" &
PIDS+=($!)
"$HAETAE" gateway --config "$(haetae_conf "$P_H2" 2)" 2>"$WORK/haetae-pl2.log" &
PIDS+=($!)

for p in $P_BACKEND $P_MS1 $P_MS2 $P_H1 $P_H2; do wait_port "$p"; done

echo "replaying $(find "$CORPUS" -name '*.yaml' | wc -l) test files from $CORPUS..." >&2
DUMP_ARGS=()
[ -n "${DUMP:-}" ] && DUMP_ARGS=(--dump "$DUMP")
echo "waf-eval — $(date -u +%Y-%m-%dT%H:%MZ), corpus $(basename "$CORPUS"), modsecurity-crs $CRS_VERSION, haetae $("$HAETAE" version 2>/dev/null | head -n 1) ($HAETAE)"
echo
python3 "$ROOT/bench/waf-replay.py" "${DUMP_ARGS[@]}" "$CORPUS" \
  "modsec-pl1=127.0.0.1:$P_MS1" "modsec-pl2=127.0.0.1:$P_MS2" \
  "haetae-pl1=127.0.0.1:$P_H1" "haetae-pl2=127.0.0.1:$P_H2"
echo
echo "Blocked = the request did not reach the backend (403 from the WAF, or a 400 from the"
echo "proxy's HTTP parser). haetae runs only its injection filter; ModSecurity runs all of CRS."
echo "Target (issue 7): haetae 941 >= 90% and 942 >= 80% of attack stages blocked, with at most"
echo "modsec-pl1's share of negative stages blocked."

# False positives on text: the detectors over the first 30,000 non-empty lines of the
# machine's Debian changelogs and copyright files (technical English full of quotes,
# parentheses, `--options`, "select", "drop", "union"), one line = one value.
if [ -n "${PROBE:-}" ] && [ -x "$PROBE" ]; then
  (for f in /usr/share/doc/*/changelog.Debian.gz; do zcat "$f" 2>/dev/null; done
   cat /usr/share/doc/*/copyright 2>/dev/null) | sed 's/^ *//' | grep -v '^$' | head -n 30000 \
    >"$WORK/prose.txt" || true
  lines=$(wc -l <"$WORK/prose.txt")
  "$PROBE" <"$WORK/prose.txt" >"$WORK/prose.out"
  echo
  echo "Text lines flagged (Debian changelogs/copyright files, $lines lines, each a value):"
  for pl in 1 2 3; do
    echo "  haetae PL$pl: $(grep -c "^    PL$pl [sx]" "$WORK/prose.out" || true)"
  done
fi
