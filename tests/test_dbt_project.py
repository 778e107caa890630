"""The dbt project on its own: every model, data test and unit test builds on an empty warehouse,
and the label seed covers every Chinese enum value of the export contract."""

from __future__ import annotations

import csv
import json
import re
import subprocess
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.dbt.resource import dbt_resource
from dagster_project.defs.ingest.contract import ENTITIES, ENUM
from dagster_project.defs.ingest.tables import create_tables
from dagster_project.settings import SEEDS_DIR, Settings

from .runs import dbt


@pytest.fixture(scope="module")
def empty_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose warehouse was built by `dbt build` from empty raw tables."""
    home = tmp_path_factory.mktemp("empty")
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        create_tables(con)
    result = dbt(home, "build")
    assert result.returncode == 0, result.stdout[-4000:]
    return home


def test_every_model_test_and_unit_test_passes_on_an_empty_warehouse(empty_build: Path):
    target = Settings.load(home=empty_build).dbt_target_path
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 20 and all(r["status"] == "pass" for r in unit_tests)
    built = [r for r in results if not r["unique_id"].startswith("exposure.")]  # nothing to run
    assert not [r["unique_id"] for r in built if r["status"] not in ("pass", "success")]


def _manifest(home: Path) -> dict:
    return json.loads((Settings.load(home=home).dbt_target_path / "manifest.json").read_text())


def test_the_database_refuses_a_null_where_a_contract_says_not_null(empty_build: Path):
    """Marts, and the intermediate tables too large to scan for nulls on every build (the buyer
    months), declare `not_null` as a constraint of their enforced contract, not as a data
    test: the table is created with NOT NULL, so a build that would write a NULL there fails
    in the write itself, and no test query runs."""
    contracted = [
        node
        for node in _manifest(empty_build)["nodes"].values()
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]
    ]
    declared = {
        (node["schema"], node["name"], name)
        for node in contracted
        for name, column in node["columns"].items()
        if any(constraint["type"] == "not_null" for constraint in column["constraints"])
    }
    assert len(declared) >= 100
    assert {"int_buyer_store_months", "int_buyer_months"} <= {table for _, table, _ in declared}
    with duckdb.connect(str(empty_build / "warehouse.duckdb")) as con:
        not_null = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where is_nullable = 'NO'"
        ).fetchall()
        tables = {(node["schema"], node["name"]) for node in contracted}
        assert {column for column in not_null if column[:2] in tables} == declared
        # Which columns are NOT NULL is asserted above; that DuckDB refuses the write, here.
        for schema, table in (
            ("intermediate", "int_buyer_months"),
            ("marts", "store_cohort_retention"),
        ):
            with pytest.raises(duckdb.ConstraintException, match="NOT NULL"):
                con.execute(f"insert into {schema}.{table} default values")


def test_the_database_refuses_a_rate_or_count_a_mart_contract_rules_out(empty_build: Path):
    """Ranges (rates in [0, 1], amounts ≥ 0) and the invariants between a mart's columns
    (refunded orders ≤ orders) are `check` constraints of the marts' contracts: every one is
    in the working table, and a row that breaks one is refused in the write."""
    declared = {
        node["name"]: [
            *(c for column in node["columns"].values() for c in column["constraints"]),
            *node["constraints"],
        ]
        for node in _manifest(empty_build)["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] == "marts"
    }
    checks = {
        table: sum(constraint["type"] == "check" for constraint in constraints)
        for table, constraints in declared.items()
    }
    assert sum(checks.values()) >= 35
    with duckdb.connect(str(empty_build / "warehouse.duckdb")) as con:
        in_database = dict(
            con.execute(
                "select table_name, count(*) from duckdb_constraints() "
                "where schema_name = 'marts' and constraint_type = 'CHECK' group by all"
            ).fetchall()
        )
        assert in_database == {table: count for table, count in checks.items() if count}
        retention = (
            "insert into marts.store_cohort_retention values ('S1', date '2021-01-01', 0, 2, 1, {})"
        )
        refunds = (
            "insert into marts.store_refunds_monthly values "
            "('S1', date '2021-01-01', 2, {}, 0.5, 0, 0, 1, 10, 0, null, 0)"
        )
        con.execute("begin")  # the same rows within the rules are written
        con.execute(retention.format(0.5))
        con.execute(refunds.format(1))
        con.execute("rollback")
        with pytest.raises(duckdb.ConstraintException, match="CHECK"):
            con.execute(retention.format(1.5))
        with pytest.raises(duckdb.ConstraintException, match="refunded_orders <= orders"):
            con.execute(refunds.format(3))


def test_not_null_columns_names_each_column_that_holds_a_null(empty_build: Path):
    """Models without a contract list their required columns in one `not_null_columns` test
    (one scan and one node, not one of each per column): it fails with a row per column that
    holds a null, saying how many rows do, and passes when none does."""
    tests = [
        node for node in _manifest(empty_build)["nodes"].values() if node["resource_type"] == "test"
    ]
    kinds = {test.get("test_metadata", {}).get("name") for test in tests}
    assert "not_null_columns" in kinds and "not_null" not in kinds  # one way to say it
    _, results = _stores_seen_test(
        empty_build,
        "not_null_columns_int_stores_seen",
        "('S1', 'orders', 3)",
        "('S2', null, null), ('S3', null, 1)",
    )
    assert results == [[], [("entity", 2), ("records", 1)]]


def test_unique_combination_over_a_whole_model_names_each_repeated_key(empty_build: Path):
    """Over a whole model (no `where`, or one that keeps every row, as after a full build)
    `unique_combination` finds repeats through a hash of the key, then reports them by the
    key itself: a repeated key fails with its count, keys that differ in one column pass.
    (Over the keys a build replaced, it groups them at once: test_end_to_end.py.)"""
    sql, results = _stores_seen_test(
        empty_build,
        "unique_combination_int_stores_seen_store_id__entity",
        "('S1', 'orders', 3), ('S1', 'refunds', 1), ('S2', 'orders', 1)",
        "('S1', 'refunds', 2), ('S1', 'refunds', 5)",
    )
    assert "dbt_subquery" not in sql  # the model itself, not a filter keeping every row
    assert results == [[], [("S1", "refunds", 3)]]


def _stores_seen_test(home: Path, test: str, *batches: str) -> tuple[str, list[list[tuple]]]:
    """A data test of int_stores_seen as the build compiled it, and the rows it fails with
    after each batch of rows (`(store_id, entity, records)` values) is written, in one
    transaction rolled back after."""
    (compiled,) = Settings.load(home=home).dbt_target_path.glob(f"compiled/**/{test}.sql")
    sql = compiled.read_text()
    results = []
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute("begin")
        try:
            for values in batches:
                con.execute(
                    "insert into intermediate.int_stores_seen (store_id, entity, records) "
                    f"values {values}"
                )
                results.append(sorted(con.execute(sql).fetchall()))
        finally:
            con.execute("rollback")
    return sql, results


def test_every_enum_label_of_the_contract_has_an_english_code():
    with (SEEDS_DIR / "enum_labels.csv").open(encoding="utf-8") as handle:
        labels = {(row["field"], row["label"]) for row in csv.DictReader(handle)}
    expected = {
        (column.name, value)
        for entity in ENTITIES.values()
        for column in entity.columns
        if column.kind == ENUM
        for value in column.values
    }
    assert expected == labels


def test_the_dbt_resource_reports_the_version_of_the_dbt_it_runs():
    """The resource skips dagster-dbt's `dbt --version` subprocess before each command and
    reports the installed dbt-core instead: the same dbt, or dagster-dbt would treat it as
    the wrong engine."""
    resource = dbt_resource()
    printed = subprocess.run(
        [resource.dbt_executable, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"(\d+\.\d+\.\d+)", printed).group(1) == str(resource._cli_version)
    assert resource._cli_version.major == 1  # dbt Core: dagster-dbt parses its JSON logs
