#!/usr/bin/env bash
# Installs Debian's prometheus for the integration tests (they start their own instance on a free
# loopback port with its own TSDB; the packaged service is never used, and is stopped if running).
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if [ ! -x /usr/bin/prometheus ]; then
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  # Without recommends: prometheus-node-exporter would be one more service listening (on 9100).
  $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package's postinst starts the service by itself: through systemd where systemd runs, and
  # otherwise through its sysvinit script (`invoke-rc.d prometheus start`, which only a
  # policy-rc.d denying it prevents, as Docker-style images ship). Either way it would listen on
  # 0.0.0.0:9090 and scrape itself into /var/lib/prometheus: stop it and keep it from starting.
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    # Called directly rather than via invoke-rc.d, which a denying policy-rc.d also refuses stops.
    $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    $sudo update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
fi
/usr/bin/prometheus --version 2>&1 | head -1
