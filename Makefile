# Two commands on a fresh machine with Python 3.11 and make: `make run`, `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DBT := $(BIN)/dbt
DBT_FLAGS := --profiles-dir . --project-dir .

.PHONY: install run test system-deps lint test-python test-dbt bench docs clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-spark.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	# compat: a path entry, so dbt sees the top-level plugin module dbt_clv_spark_session
	$(BIN)/pip install --quiet --no-deps --config-settings editable_mode=compat -e .
	touch $@

# The whole batch job on the bundled sample, through the same CLI a scheduler uses.
run: install
	$(BIN)/clv run --input sample_data/transactions.csv --output data/output
	@echo "Warehouse: $${CLV_DUCKDB_PATH:-data/warehouse.duckdb}; report: data/output/report.html"

# The static docs site (lineage and column docs) in target/static_index.html.
docs: install
	CLV_DUCKDB_PATH=data/docs.duckdb $(DBT) build $(DBT_FLAGS) --quiet
	CLV_DUCKDB_PATH=data/docs.duckdb $(DBT) docs generate $(DBT_FLAGS) --static
	@echo "Docs site: target/static_index.html (one file; open it in a browser)"

# The whole suite: the Debian packages the tests start, lint, pytest (which also drives
# dbt end to end), then dbt's own data and unit tests on the bundled sample in a
# throwaway database.
test: system-deps install lint test-dbt test-python

# Redis, Chromium, Java, Node.js and npm, installed with apt-get where missing; without
# root (or apt-get) it names the missing packages and stops before any test.
system-deps:
	@bash tests/system_deps.sh

# dynalite, the DynamoDB-compatible server the publishing tests start (npm registry,
# Node.js and npm from Debian, which system-deps installs).
DYNALITE := tests/dynalite/node_modules/.installed
$(DYNALITE): tests/dynalite/package-lock.json | system-deps
	npm ci --prefix tests/dynalite --no-audit --no-fund --loglevel=error
	touch $@

lint:
	$(BIN)/ruff check src tests benchmarks python_models
	$(BIN)/ruff format --check src tests benchmarks python_models
	CLV_DUCKDB_PATH=data/lint.duckdb $(BIN)/sqlfluff lint models analyses tests/dbt

test-dbt:
	rm -f data/test.duckdb
	CLV_DUCKDB_PATH=data/test.duckdb $(DBT) build $(DBT_FLAGS)

test-python: $(DYNALITE)
	$(BIN)/pytest

# The whole job against its naive floor: SIZE=10m (default), 50m or 100m transactions,
# generated under /tmp/clv-bench when absent.
SIZE ?= 10m
bench: install
	$(BIN)/python benchmarks/end_to_end.py --size $(SIZE)

clean:
	rm -rf target logs data/*.duckdb data/output
