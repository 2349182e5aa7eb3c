#!/usr/bin/env bash
# Make sure Debian's Chromium is installed: the browser tests (EventSource in a
# real browser, the dashboard) drive it with playwright-core, which never
# downloads a browser of its own.
#
#   bash scripts/chromium.sh     installs the `chromium` package if /usr/bin/chromium is missing
set -euo pipefail

if [[ -x /usr/bin/chromium ]]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
  echo "chromium: missing; install it with: apt-get install -y chromium" >&2
  exit 1
fi
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
echo "chromium: installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -qq || true
as_root apt-get install -y -qq chromium >/dev/null
echo "chromium: $(/usr/bin/chromium --version)"
