#!/usr/bin/env bash
# Render an HTML report in headless Chromium and save a full-page screenshot, to look at
# the report as a reader would.  Usage: scripts/report_screenshot.sh report.html out.png
# Needs Chromium (Debian: apt-get install chromium).
set -euo pipefail
report=$(realpath "$1")
out=${2:-report.png}
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,4200 \
  --screenshot="$(realpath -m "$out")" "file://$report" 2>/dev/null
echo "$out"
