#!/usr/bin/env bash
# Debian packages the tests use: Chromium for the real-browser tests (Playwright cannot download its own browser
# offline), Fashion-MNIST for the fashion-shift demo and the Noto Color Emoji + Symbola fonts for the emoji demo.
# Without root/apt those tests skip with a reason.
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
[ -d /usr/share/datasets/fashion-mnist ] || need+=(dataset-fashion-mnist)
[ -f /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || need+=(fonts-noto-color-emoji)
[ -f /usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf ] || need+=(fonts-symbola)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)  # the PostgreSQL store/queue tests
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "note: cannot apt-get install ${need[*]}; the tests that need them will be skipped" >&2
  fi
fi
