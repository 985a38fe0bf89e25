#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser/: Playwright, from PyPI, drives it
# headless; Playwright's own browser download is never used), with a colour emoji font so that the
# screenshots show the page's ✅ and ❌ as a person sees them.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-noto-color-emoji >/dev/null
# (Debian's launcher script may print a harmless shell warning on stderr: not ours to show.)
/usr/bin/chromium --version 2>/dev/null | head -1
