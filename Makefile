# Two commands on a fresh Debian machine with Python 3.11:
#   make demo   the demo pipeline end to end on embedded DuckDB
#   make test   every test tier (unit, integration, e2e, slow), on DuckDB and PostgreSQL, and
#               on Spark (local mode) the steps it runs
# make demo ENGINE=postgres runs the demo on PostgreSQL: the database ANCHORFLOW_PG_DSN names, or
# a local cluster in examples/product_analytics/.postgres (left running; the demo prints its DSN
# and how to stop it). PostgreSQL's server is installed with apt-get when initdb is missing.
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
ENGINE ?= duckdb
DEMO_PG := $(if $(filter postgres,$(ENGINE)),$(if $(ANCHORFLOW_PG_DSN),,postgres-server))

.PHONY: demo test test-fast lint bench bench-quick bench-staging bench-anchor bench-files \
  bench-engines bench-webhooks bench-redis bench-async bench-dashboards bench-spark clean \
  postgres-server redis-server chromium java

demo: $(VENV)/.main-installed $(DEMO_PG) redis-server
	$(BIN)/anchorflow demo --project examples/product_analytics --engine $(ENGINE)

# The tests (and the demo) start their own throwaway cluster with initdb/pg_ctl; Debian keeps them
# in /usr/lib/postgresql/<version>/bin. No cluster of the package's own is used.
postgres-server:
	@command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

# The Redis tests (and the demo) start their own redis-server on a free loopback port.
redis-server:
	@command -v redis-server >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)

# The Spark engine's tests start Spark in local mode, which needs a Java runtime (17).
java:
	@command -v java >/dev/null 2>&1 || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless)

# The page tests drive Debian's chromium through Playwright (never `playwright install`).
chromium:
	@test -x /usr/bin/chromium || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: $(VENV)/.dev-installed $(DBT_VENV)/.installed postgres-server redis-server chromium java
	ANCHORFLOW_DBT_VENV=$(abspath $(DBT_VENV)) $(BIN)/python -m pytest -n 2 --dist loadfile --durations=40

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

bench-engines: $(VENV)/.bench-installed postgres-server
	$(BIN)/python -m bench.engines

bench-spark: $(VENV)/.bench-installed java
	$(BIN)/python -m bench.spark

bench-webhooks: $(VENV)/.bench-installed
	$(BIN)/python -m bench.webhooks

bench-redis: $(VENV)/.bench-installed redis-server
	$(BIN)/python -m bench.redis_bus

bench-async: $(VENV)/.bench-installed
	$(BIN)/python -m bench.async_export

bench-dashboards: $(VENV)/.bench-installed
	$(BIN)/python -m bench.dashboards

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
	-@for data in examples/*/.postgres/data; do [ -f $$data/postmaster.pid ] && \
	  $(BIN)/python -c "import sys; from anchorflow.dev.postgres import LocalPostgres; \
	  LocalPostgres(sys.argv[1], keep=True).stop()" $$(dirname $$data); done; true
	rm -rf $(VENV) $(DBT_VENV) examples/*/warehouse.duckdb examples/*/.data examples/*/exports \
	  examples/*/.postgres \
	  examples/dbt_product_analytics/target examples/dbt_product_analytics/logs
