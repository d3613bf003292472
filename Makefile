# Two commands on a fresh Debian machine with Python 3.11:
#   make demo   the demo pipeline end to end on embedded DuckDB
#   make test   every test tier (unit, integration, e2e, slow)
# For work in progress: make test-fast (the unit tier, under a minute).
# Environments are built from the committed lock files in requirements/ and rebuilt only when a
# lock file changes. `make test` also builds .venv-dbt (requirements/dbt.lock): dbt-duckdb with
# DuckDB's long-term release, for the dbt example and the tests that read the warehouse as a
# DuckDB 1.4 client.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DBT_VENV ?= .venv-dbt
UV_VERSION := 0.13.9

.PHONY: demo test test-fast lint bench bench-quick bench-staging bench-anchor bench-files bench-engines clean

demo: $(VENV)/.main-installed
	$(BIN)/anchorflow demo --project examples/product_analytics

test: $(VENV)/.dev-installed $(DBT_VENV)/.installed
	ANCHORFLOW_DBT_VENV=$(abspath $(DBT_VENV)) $(BIN)/python -m pytest

test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m unit -q

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

bench: $(VENV)/.bench-installed
	$(BIN)/python -m bench.amplitude_ingest

bench-quick: $(VENV)/.bench-installed
	$(BIN)/python -m bench.amplitude_ingest --quick

bench-staging: $(VENV)/.bench-installed
	$(BIN)/python -m bench.staging

bench-anchor: $(VENV)/.bench-installed
	$(BIN)/python -m bench.anchor

bench-files: $(VENV)/.bench-installed
	$(BIN)/python -m bench.files_ingest

bench-engines: $(VENV)/.bench-installed
	$(BIN)/python -m bench.engines

$(BIN)/uv:
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c "import ensurepip" 2>/dev/null || \
	  (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.%-installed: requirements/%.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync -q --python $(BIN)/python $<
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	rm -f $(VENV)/.*-installed
	touch $@

$(DBT_VENV)/.installed: requirements/dbt.lock | $(BIN)/uv
	$(PYTHON) -m venv $(DBT_VENV)
	$(BIN)/uv pip sync -q --python $(DBT_VENV)/bin/python $<
	touch $@

clean:
	rm -rf $(VENV) $(DBT_VENV) examples/*/warehouse.duckdb examples/*/.data examples/*/exports \
	  examples/dbt_product_analytics/target examples/dbt_product_analytics/logs
