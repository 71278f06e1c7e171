#!/usr/bin/env bash
# haetae-helper (issue 11): the native helper on a real X server. Each test starts its own
# Xvfb (:205-:208), starts the standalone haetae-helper binary from a copy (as a download
# would), pairs with it as the page does and checks with xdotool and a test window: consented
# control moves the pointer, clicks and types; nothing without consent or with an indirect
# policy; Ctrl+Alt+Shift takes control back within 100 ms (the measured latency is printed);
# the notice is on top, bottom-right, click-through except its end button, which ends the
# session; the helper's binary is gone afterwards. Screenshot: target/tmp/helper-notice.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in Xvfb xdotool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "55-helper: $tool is missing (Debian packages xvfb and xdotool, .ci/apt-packages)" >&2
    exit 1
  fi
done
HAETAE_TEST_XVFB=1 cargo nextest run --locked -p haetae-helper --run-ignored all \
  --no-fail-fast --no-capture
