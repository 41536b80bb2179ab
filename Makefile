# watchkeeper — the two commands: `make demo` and `make test` (each installs what it needs).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck pytest test-services bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: install
	$(BIN)/watchkeeper demo $(DEMO_ARGS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# Real components the tests use (installed with apt-get when missing, started locally).
test-services:
	scripts/install-chromium.sh
	scripts/prometheus.sh install
	scripts/postgres.sh start >/dev/null
	PYTHON=$(PYTHON) scripts/mlflow.sh install >/dev/null
	PYTHON=$(BIN)/python scripts/feast.sh install >/dev/null

pytest: install test-services
	$(BIN)/pytest -n 2 --timeout=600 -q

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/bench_report.py

clean:
	rm -rf $(VENV) .venv-mlflow .feast-site .mypy_cache .pytest_cache .ruff_cache build dist src/*.egg-info
