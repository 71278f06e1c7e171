#!/usr/bin/env bash
# haetae-crypto: the `haetae crypto` command end to end — the registry table prints, an
# approved deployment passes `check` (exit 0), and a deployment choosing RSA-1024, SHA-1
# signatures, 3DES, ECB, CCM over HIGHT, 1024-bit KCDSA and HAS-160 digests is refused choice by
# choice with reasons (exit 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --locked -q --workspace --bins
haetae=target/debug/haetae
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$haetae" crypto algorithms > "$tmp/table"
grep -q '^ALGORITHM ' "$tmp/table"
grep -E '^RSA-1024 .* refused ' "$tmp/table" >/dev/null
grep -E '^LSH-256 .* approved ' "$tmp/table" >/dev/null
grep -E '^CCM .* approved ' "$tmp/table" >/dev/null
grep -E '^EC-KCDSA-P256 .* approved ' "$tmp/table" >/dev/null
grep -E '^KCDSA-2048 .* approved until 2030-12-31' "$tmp/table" >/dev/null
grep -E '^KCDSA-1024 .* refused ' "$tmp/table" >/dev/null
grep -E '^HAS-160 .* HMAC/KDF/RNG only' "$tmp/table" >/dev/null

cat > "$tmp/good.toml" <<'TOML'
[policy]
min_strength = 128
[[choice]]
use = "quarantine at rest"
purpose = "encryption"
algorithm = "ARIA-256-GCM"
[[choice]]
use = "keypad fields (legacy)"
purpose = "encryption"
algorithm = "SEED-CBC"
[[choice]]
use = "stored passwords"
purpose = "password-storage"
algorithm = "Argon2id"
[[choice]]
use = "IoT terminal records"
purpose = "encryption"
algorithm = "LEA-128-CCM"
[[choice]]
use = "approval signatures"
purpose = "signature"
algorithm = "EC-KCDSA"
[[choice]]
use = "legacy partner MAC"
purpose = "mac"
algorithm = "HMAC-HAS-160"
TOML
"$haetae" crypto check "$tmp/good.toml"

cat > "$tmp/bad.toml" <<'TOML'
[[choice]]
purpose = "signature"
algorithm = "RSA-1024"
[[choice]]
purpose = "signature"
algorithm = "SHA-1"
[[choice]]
purpose = "encryption"
algorithm = "3DES"
[[choice]]
purpose = "encryption"
algorithm = "AES-128-ECB"
[[choice]]
purpose = "encryption"
algorithm = "HIGHT-CCM"
[[choice]]
purpose = "signature"
algorithm = "KCDSA-1024"
[[choice]]
purpose = "digest"
algorithm = "HAS-160"
TOML
set +e
"$haetae" crypto check "$tmp/bad.toml" > "$tmp/bad.out"
code=$?
set -e
cat "$tmp/bad.out"
[ "$code" -eq 1 ] || { echo "expected exit 1 for refused choices, got $code" >&2; exit 1; }
[ "$(grep -c '^REFUSED' "$tmp/bad.out")" -eq 7 ] || { echo "expected 7 refusals" >&2; exit 1; }
echo "haetae crypto: table, approved and refused deployments behave as specified"
