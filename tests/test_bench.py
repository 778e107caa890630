"""`trustwh bench` on a tiny point: a smoke test that every stage runs and is reported.

No timing is asserted: a benchmark measures, a test only checks that it can.
"""

from __future__ import annotations

import json
import re

import pytest

from dagster_project.bench.runner import SMALL_DAY_ORDERS, STAGES, parse_points

from .runs import query, trustwh


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
    for heading in (
        "| full/baseline |",
        "| incr/full |",
        "| small/full |",
        "## Targets of issue 6",
    ):
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
    for stage in ("full", "incremental", "small_day"):
        assert {"ingest", "dbt", "publish"} <= set(point["stages"][stage]["steps"]), stage
    # The baseline ran first and last; the summary shows, and the ratios use, the faster run.
    runs = [point["stages"][stage]["seconds"] for stage in ("baseline", "baseline_again")]
    [summary] = [line for line in text.splitlines() if line.startswith("| 0.01M |")]
    assert summary.split(" | ")[3] == f"{min(runs):.1f}", summary
    assert f"{runs[0]:.1f} s (first) and {runs[1]:.1f} s (last)" in text
    # Nothing new: `trustwh run` sees it without starting a Dagster run.
    assert point["stages"]["idle"]["steps"] == {}
    assert "No run started" in " ".join((work / "0.01M" / "logs" / "idle.log").read_text().split())
    # `python -m dagster_project.cli` prints what the `trustwh` command prints: no line of
    # Python's logging format (dagster-dbt logs "INFO:dagster.builtin:..." to a root handler).
    full_log = (work / "0.01M" / "logs" / "full.log").read_text()
    assert "succeeded" in full_log
    assert not re.search(r"^[A-Z]+:[\w.]+:", full_log, re.MULTILINE), full_log

    # The crafted days are clean exports: every file published, no row set aside. The small
    # day is the day after the incremental one, of about 100 orders rows at any point.
    days = query(
        work / "0.01M" / "home" / "warehouse.duckdb",
        "select export_date, status, sum(rows_quarantined), count(*) from quality.load_ledger "
        "where file_name like '%benchday%' group by all order by all",
    )
    day, small = point["day"], point["small_day"]
    assert [(str(row[0]), *row[1:]) for row in days] == [
        (day["export_date"], "published", 0, day["files"]),
        (small["export_date"], "published", 0, small["files"]),
    ]
    assert 0 < small["rows"]["orders"] <= 1.5 * SMALL_DAY_ORDERS  # the point's nominal orders
    assert f"The small day (export date {small['export_date']})" in text
