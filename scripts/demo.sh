#!/usr/bin/env bash
# The CLI demo: a simulated cluster where checkout 2.14.0 (bad) sits on 2.13.0, rolled back.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
work=$(mktemp -d)
"$bin/rollback-sandbox" --port 0 --speed 4 --kubeconfig-out "$work/kubeconfig" >"$work/sandbox.log" &
sandbox=$!
trap 'kill "$sandbox" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
export KUBECONFIG="$work/kubeconfig" ROLLBACK_BOT_CONFIG=examples/catalog.yaml
set -x
"$bin/rollback-bot" history checkout
"$bin/rollback-bot" rollback checkout --yes --reason "demo: 5xx after 2.14.0"
"$bin/rollback-bot" history checkout
