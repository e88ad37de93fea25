# Every target installs what it needs into .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
# The stamp changes when pyproject.toml does, so a change of dependencies reinstalls.
STAMP  := $(VENV)/.stamp-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BENCH_STAMP := $(VENV)/.bench-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_WORKERS ?= 2

.PHONY: help venv test lint typecheck unit demo layer synth bench bench-quick clean

help:
	@echo "make demo     run the local demo (monitor, then enforce) of the Lambda sensor"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make layer    build dist/ramparts-layer.zip"
	@echo "make synth    synthesize the CDK app (cdk.out/)"
	@echo "make bench    run the benchmarks (see bench/README.md)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.stamp-*
	touch $@

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	rm -f $(VENV)/.bench-*
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q -n $(PYTEST_WORKERS)

test: lint typecheck unit

demo: venv
	$(BIN)/ramparts demo

layer: venv
	$(BIN)/ramparts layer build --out dist

# The CDK CLI is pinned in package.json / package-lock.json; `make test` never needs npm.
node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

synth: venv node_modules/.bin/cdk
	JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=$(shell node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/') node_modules/.bin/cdk synth --quiet

bench: $(BENCH_STAMP)
	$(PY) bench/run_all.py

bench-quick: $(BENCH_STAMP)
	$(PY) bench/run_all.py --quick

clean:
	rm -rf build dist cdk.out .pytest_cache .mypy_cache .ruff_cache bench/results
