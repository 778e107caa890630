# The verbs a person types. Every target bootstraps what it needs: a bare machine with
# Python 3.11 and access to PyPI is enough (`make run`, `make test`).
PYTHON ?= python3
UV_VERSION := 0.13.8
BIN := .venv/bin
LANDING ?= landing
WAREHOUSE_HOME ?= .trustwh
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test unit-sql lint format dev bench clean

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@test -x .tools/bin/uv || ($(PYTHON) -m venv .tools && .tools/bin/pip install -q uv==$(UV_VERSION))
	# Bytecode compiled at install: every `trustwh` process imports Dagster, dbt and GX, and
	# compiling them from source costs seconds per process where .pyc files cannot be written.
	.tools/bin/uv sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

## run: build the warehouse from ./landing (a sample is generated there when it is empty)
run: install
	@if [ -z "$$(ls -A $(LANDING) 2>/dev/null)" ]; then \
		echo "$(LANDING) is empty: generating the sample exports"; \
		$(BIN)/trustwh generate --out $(LANDING); \
	fi
	$(BIN)/trustwh run --landing $(LANDING) --home $(WAREHOUSE_HOME)

## test: lint Python and SQL, then the test suite (unit, dbt unit tests, end to end) in
## TEST_WORKERS processes: most of a test's time is one Python process (Dagster, dbt, GX)
TEST_WORKERS ?= 2
test: install lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal --durations=20

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	TRUSTWH_WAREHOUSE=:memory: $(BIN)/sqlfluff lint dbt_project --processes 2

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	TRUSTWH_WAREHOUSE=:memory: $(BIN)/sqlfluff fix dbt_project --processes 2

## dev: the Dagster UI on http://127.0.0.1:3000 (DEV_PORT=…) over the home and landing of `make run`
DEV_PORT ?= 3000
dev: install
	mkdir -p $(WAREHOUSE_HOME)/dagster
	test -e $(WAREHOUSE_HOME)/dagster/dagster.yaml || \
		cp dagster_project/dagster.yaml $(WAREHOUSE_HOME)/dagster/dagster.yaml
	TRUSTWH_HOME=$(abspath $(WAREHOUSE_HOME)) TRUSTWH_LANDING=$(abspath $(LANDING)) \
	DAGSTER_HOME=$(abspath $(WAREHOUSE_HOME))/dagster \
	$(BIN)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p $(DEV_PORT)

## bench: time full, incremental and idle builds against a plain DuckDB load (POINTS=0.1M,1M,10M)
POINTS ?= 0.1M,1M,10M
bench: install
	$(BIN)/trustwh bench --points $(POINTS) --out bench/results

clean:
	rm -rf $(WAREHOUSE_HOME) dbt_project/target dbt_project/logs
