#!/usr/bin/env bash
# Installs Debian's prometheus-alertmanager for the integration tests (they start their own
# instance on a free loopback port; the packaged service is never used, and is stopped if running).
set -euo pipefail
if [ -x /usr/bin/prometheus-alertmanager ]; then exit 0; fi
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null
if command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now prometheus-alertmanager >/dev/null 2>&1 || true
fi
/usr/bin/prometheus-alertmanager --version 2>&1 | head -1
