#!/usr/bin/env bash
# Install Debian's `chromium` for the browser test (tests/e2e/test_browser_cors.py) when /usr/bin/chromium
# is missing (idempotent; CI calls it). Playwright drives this binary: it never downloads its own browsers.
# Runs apt-get as root, or through sudo when available; prints what it did.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-chromium: present ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-chromium: need root to install chromium" >&2; exit 1; }
  sudo=(sudo)
fi

echo "install-chromium: installing chromium"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation
/usr/bin/chromium --version
