#!/usr/bin/env bash
# Debian packages the test suite drives: docker-compose (validates docker-compose.yml without
# an engine) and chromium (the browser tests drive Debian's build through Playwright; no browser
# is ever downloaded). Installed only when missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
