#!/usr/bin/env bash
# Cipher throughput, haetae beside OpenSSL on the same machine, one core each:
#   bench/crypto.sh [SECONDS]        (default 3 seconds per measurement)
# haetae: crates/haetae-crypto/examples/throughput.rs (release build, 16 KiB messages).
# OpenSSL: `openssl speed -evp <cipher> -bytes 16384` (legacy provider loaded for SEED).
# MB = 10^6 bytes, as `openssl speed` counts. LEA has no OpenSSL implementation.
set -euo pipefail

seconds="${1:-3}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

command -v openssl >/dev/null || { echo "bench/crypto.sh: openssl is needed (apt-get install openssl)" >&2; exit 2; }

echo "building haetae (release)..." >&2
cargo build --release --quiet -p haetae-crypto --example throughput
ours_bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/throughput"

# suite (haetae name) | OpenSSL EVP name ("-" when OpenSSL has none)
pairs=(
  "AES-256-GCM|aes-256-gcm"
  "ARIA-256-GCM|aria-256-gcm"
  "LEA-256-GCM|-"
  "SEED-128-CBC|seed-cbc"
  "AES-128-GCM|aes-128-gcm"
  "ARIA-128-CBC|aria-128-cbc"
  "AES-256-CCM|-"
  "LEA-256-CCM|-"
)

openssl_mbps() {
  # Prints MB/s for one EVP cipher, or "-" when OpenSSL cannot run it.
  local out
  if ! out=$(openssl speed -provider legacy -provider default -seconds "$seconds" -bytes 16384 -evp "$1" 2>/dev/null); then
    echo "-"; return
  fi
  echo "$out" | awk 'tolower($1)==tolower("'"$1"'") { v=$NF; sub(/k$/, "", v); printf "%.1f\n", v/1000 }' | tail -1
}

cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
aesni="no"; grep -qw aes /proc/cpuinfo 2>/dev/null && aesni="yes"
echo "CPU: ${cpu:-unknown} (AES-NI: $aesni); $(openssl version); ${seconds}s per measurement, 16 KiB messages, 1 core"
echo
printf '%-14s %14s %14s %10s\n' "suite" "haetae MB/s" "OpenSSL MB/s" "haetae/OSSL"
printf '%-14s %14s %14s %10s\n' "--------------" "-----------" "------------" "----------"

declare -A ours theirs
for pair in "${pairs[@]}"; do
  suite="${pair%%|*}"; evp="${pair##*|}"
  ours[$suite]="$("$ours_bin" "$seconds" "$suite" | awk '{print $2}')"
  if [ "$evp" = "-" ]; then theirs[$suite]="-"; else theirs[$suite]="$(openssl_mbps "$evp")"; fi
  ratio="-"
  if [ "${theirs[$suite]}" != "-" ] && [ -n "${theirs[$suite]}" ]; then
    ratio="$(awk -v a="${ours[$suite]}" -v b="${theirs[$suite]}" 'BEGIN { printf "%.2f", a/b }')"
  fi
  printf '%-14s %14s %14s %10s\n' "$suite" "${ours[$suite]}" "${theirs[$suite]:--}" "$ratio"
done

echo
check() { # description, condition (awk expression over a and b)
  if awk -v a="$2" -v b="$3" "BEGIN { exit !($4) }"; then echo "PASS  $1"; else echo "MISS  $1"; fi
}
check "AES-256-GCM within 2x of OpenSSL (ratio >= 0.50)" "${ours[AES-256-GCM]}" "${theirs[AES-256-GCM]}" 'a/b >= 0.5'
check "ARIA-256-GCM >= 100 MB/s per core" "${ours[ARIA-256-GCM]}" 0 'a >= 100'
check "LEA-256-GCM >= 100 MB/s per core" "${ours[LEA-256-GCM]}" 0 'a >= 100'
