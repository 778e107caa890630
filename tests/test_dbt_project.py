"""The dbt project on its own: every model, data test and unit test builds on an empty warehouse,
and the label seed covers every Chinese enum value of the export contract."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import ENTITIES, ENUM
from dagster_project.defs.ingest.tables import create_tables
from dagster_project.settings import SEEDS_DIR, Settings

from .runs import dbt


def test_every_model_test_and_unit_test_passes_on_an_empty_warehouse(tmp_path: Path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        create_tables(con)
    result = dbt(tmp_path, "build")
    assert result.returncode == 0, result.stdout[-4000:]
    target = Settings.load(home=tmp_path).dbt_target_path
    results = json.loads((target / "run_results.json").read_text())["results"]
    unit_tests = [r for r in results if r["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 20 and all(r["status"] == "pass" for r in unit_tests)
    built = [r for r in results if not r["unique_id"].startswith("exposure.")]  # nothing to run
    assert not [r["unique_id"] for r in built if r["status"] not in ("pass", "success")]


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
