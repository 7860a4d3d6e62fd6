#!/usr/bin/env bash
# Debian's Chromium for the real-browser tests (Playwright cannot download its own browser offline).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "note: /usr/bin/chromium missing and cannot apt-get install it; browser tests will be skipped" >&2
  fi
fi
