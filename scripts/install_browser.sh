#!/usr/bin/env bash
# The browser tests (tests/browser/) drive Debian's Chromium through Playwright; Playwright's own
# browser download cannot work here, so CI installs the distribution package when it is missing.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
/usr/bin/chromium --version
