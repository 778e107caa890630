"""`trustwh bench` on a tiny point: a smoke test that every stage runs and is reported.

No timing is asserted: a benchmark measures, a test only checks that it can.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import pytest

from dagster_project.bench.day import craft_day
from dagster_project.bench.runner import STAGES, parse_points
from dagster_project.sample_data.generate import generate

from .runs import mart_fingerprints, query, trustwh


def test_points_are_orders_with_k_and_m_suffixes():
    assert parse_points("0.1M, 1M,10M") == [("0.1M", 100_000), ("1M", 1_000_000), ("10M", 10**7)]
    assert parse_points("50k,20000") == [("50k", 50_000), ("20000", 20_000)]
    with pytest.raises(ValueError, match=r"like 0\.1M"):
        parse_points("lots")


@pytest.mark.slow
def test_a_small_point_writes_every_stage_and_ratio(tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    code, output = trustwh("bench", "--points", "0.01M", "--out", out, "--work", work, "--keep")
    assert code == 0, output
    [results] = out.glob("*.md")
    text = results.read_text()
    for heading in ("| full/baseline |", "| incr/full |", "## Targets of issue 6"):
        assert heading in text
    for step in ("ingest", "dbt", "publish", "startup and teardown", "peak RSS"):
        assert f"| {step}" in text, step
    assert "0.01M" in output and "trustwh bench" in output  # the printed table

    [data] = out.glob("*.json")
    point = json.loads(data.read_text())["points"]["0.01M"]
    assert point["error"] is None
    assert set(point["stages"]) == set(STAGES)
    for stage in STAGES:
        measured = point["stages"][stage]
        assert measured["returncode"] == 0 and measured["seconds"] > 0, stage
        assert measured["peak_rss"] >= measured["max_process_rss"] > 0, stage
    for stage in ("full", "incremental"):
        assert {"ingest", "dbt", "publish"} <= set(point["stages"][stage]["steps"]), stage
    assert "publish" in point["stages"]["idle"]["skipped"]  # nothing new: nothing published

    # The crafted day is a clean export: every file published, no row set aside.
    day = query(
        work / "0.01M" / "home" / "warehouse.duckdb",
        "select status, sum(rows_quarantined), count(*) from quality.load_ledger "
        "where file_name like '%benchday%' group by status",
    )
    assert day == [("published", 0, point["day"]["files"])]


# Incremental models (issue 6): int_orders_current and int_refunds_current recompute only what
# new or withdrawn loads touch. Whatever the path, the result must be the full build's.
CURRENT_TABLES = ("int_orders_current", "int_refunds_current")


def _current_fingerprints(warehouse) -> dict[str, str]:
    """Content hashes of the incremental tables; `loaded_at` differs between homes."""
    fingerprints = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name in CURRENT_TABLES:
            rows = con.execute(
                f"select * exclude (loaded_at) from intermediate.{name} order by all"
            ).fetchall()
            fingerprints[name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return fingerprints


def _states(warehouse) -> dict[str, set]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return {
            name: {
                row[0]
                for row in con.execute(
                    f"select distinct fingerprint from intermediate.{name}__state"
                ).fetchall()
            }
            for name in CURRENT_TABLES
        }


def _copy_as_full_build(home, target) -> None:
    """A copy of `home` whose next run builds the incremental tables from scratch."""
    shutil.copytree(home, target)
    with duckdb.connect(str(target / "warehouse.duckdb")) as con:
        for name in CURRENT_TABLES:
            con.execute(f"drop table intermediate.{name}")
            con.execute(f"drop table intermediate.{name}__state")
        con.execute("delete from quality.publish_log")  # or the run would find nothing to do


def _run(landing, home) -> None:
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output


@pytest.mark.slow
def test_n_incremental_runs_equal_one_full_run(tmp_path, monkeypatch):
    """Three runs (two halves of a dirty landing, then a crafted day of new orders, orders
    moving on and unchanged re-exports) build the same marts and current versions as one
    run over everything; so do a release and a withdrawn load, against a rebuild."""
    monkeypatch.setenv("TRUSTWH_PII_KEY", "bench-test-key-0123456789")  # one key, both homes
    source = tmp_path / "source"
    generate(source, scale=0.03, months=4, dirty=True)
    files = sorted(source.glob("*/*.csv"), key=lambda path: (path.name[-12:], path.name))
    landing, home = tmp_path / "landing", tmp_path / "home"
    half = len(files) // 2
    for batch in (files[:half], files[half:]):
        for path in batch:
            target = landing / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        _run(landing, home)
    states = _states(home / "warehouse.duckdb")
    day = craft_day(home / "warehouse.duckdb", tmp_path / "day")
    assert day.detail["orders_moved_on"] and day.detail["orders_unchanged"]
    for path in day.files:
        shutil.copy2(path, landing / path.parent.name / path.name)
    _run(landing, home)
    # One fingerprint per table, the same in every run: the runs took the incremental path.
    assert _states(home / "warehouse.duckdb") == states
    assert all(len(values) == 1 and None not in values for values in states.values())

    full = tmp_path / "full"
    _run(landing, full)
    assert mart_fingerprints(home / "serving.duckdb") == mart_fingerprints(full / "serving.duckdb")
    assert _current_fingerprints(home / "warehouse.duckdb") == _current_fingerprints(
        full / "warehouse.duckdb"
    )

    # A blocked load released, a published one withdrawn: the next run against a rebuild.
    warehouse = home / "warehouse.duckdb"
    [(blocked,)] = query(
        warehouse,
        "select min(load_id) from quality.load_ledger where status = 'blocked' "
        "and entity = 'orders'",
    )
    code, output = trustwh("release", blocked, "--reason", "test", "--home", home)
    assert code == 0, output
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update quality.load_ledger set status = 'blocked' where load_id = ("
            "select min(load_id) from quality.load_ledger where entity = 'orders' "
            "and status = 'published' and file_name like '%reexport%')"
        )
    rebuilt = tmp_path / "rebuilt"
    _copy_as_full_build(home, rebuilt)
    _run(landing, home)
    _run(landing, rebuilt)
    assert mart_fingerprints(home / "serving.duckdb") == mart_fingerprints(
        rebuilt / "serving.duckdb"
    )
    assert _current_fingerprints(home / "warehouse.duckdb") == _current_fingerprints(
        rebuilt / "warehouse.duckdb"
    )
