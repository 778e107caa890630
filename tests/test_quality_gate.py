"""The quality gate: Great Expectations checks every new load in DuckDB; a load that fails an
error-level check is blocked on its own, can be released on purpose or superseded by a
corrected file. Real DuckDB files, real GX, real `trustwh run`s on small generated exports."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.ingest.contract import ENTITIES, ORDERS, REFUNDS
from dagster_project.defs.ingest.loader import ingest_entity
from dagster_project.defs.quality import expectations
from dagster_project.defs.quality.expectations import (
    asset_check_results,
    asset_check_specs,
    validate_loads,
)
from dagster_project.home import home_busy, lock_home, unlock_home
from data_tests import SUITES

from .exports import order, refund, write_export
from .runs import query, trustwh

LOADED_AT = datetime(2021, 10, 1, 8, 0, 0)
RAW_ORDERS = dg.AssetKey(["raw", "orders"])


def fan(fan_id: str = "B1", **fields: str) -> dict[str, str]:
    row = {
        "snapshot_date": "2021-09-02",
        "store_id": "S001",
        "fan_id": fan_id,
        "followed_at": "2021-08-01 10:00:00",
        "is_following": "是",
        "fan_club_level": "2",
        "fan_club_joined_at": "2021-08-02 10:00:00",
    }
    row.update(fields)
    return row


def violation(violation_id: str = "V1", **fields: str) -> dict[str, str]:
    row = {
        "violation_id": violation_id,
        "store_id": "S001",
        "anchor_id": "A1",
        "live_session_id": "L1",
        "violation_type": "虚假宣传",
        "source": "平台巡查",
        "severity": "一般",
        "penalty_points": "2",
        "penalty_amount": "100.00",
        "violation_status": "已确认",
        "detected_at": "2021-09-01 21:00:00",
        "updated_at": "2021-09-01 21:00:00",
    }
    row.update(fields)
    return row


ROWS = {"orders": order, "refunds": refund, "fans": fan, "violations": violation}
KEYS = {
    "orders": "order_id",
    "refunds": "refund_id",
    "fans": "fan_id",
    "violations": "violation_id",
}


def rows_of(entity: str, prefix: str, count: int, **fields: str) -> list[dict[str, str]]:
    key = KEYS[entity]
    return [ROWS[entity](**{key: f"{prefix}{index:08d}"}, **fields) for index in range(count)]


# --- The gate on its own: validate_loads over loads in a real DuckDB file ------------------


def land(
    con,
    root: Path,
    entity: str,
    files: dict[str, list[dict[str, str]]],
    loaded_at: datetime = LOADED_AT,
):
    """Land files of one entity and load them; return their ledger entries by file name."""
    for name, rows in files.items():
        write_export(root, entity, name, rows)
    entries = ingest_entity(
        con, ENTITIES[entity], root / entity, root / "tmp", loaded_at, quarantine_threshold=0.05
    )
    return {entry.file_name: entry for entry in entries}


def ledger(con, load_id: str) -> tuple[str, str]:
    return con.execute(
        "select status, reason from quality.load_ledger where load_id = ?", [load_id]
    ).fetchone()


# A rule the loader already enforces (quarantine) cannot reach raw through a file; these
# break it in raw directly, as a loader regression would, to prove the gate still holds.
RAW_BREAKS = {
    "buyer_id_not_null": "buyer_id = null",
    "order_status_in_set": "order_status = '已退款'",
    "paid_amount_non_negative": "paid_amount = -1",
    "quantity_non_negative": "quantity = -2",
    "key_unique_in_load": "order_id = '2000000000'",
    "created_at_in_time_range": "created_at = timestamp '1999-12-31 23:00:00'",
    "updated_at_in_time_range": "updated_at = timestamp '2021-09-04 00:00:00'",
    "paid_at_in_time_range": "paid_at = timestamp '2030-01-01 00:00:00'",
}


@pytest.mark.parametrize("check", sorted(RAW_BREAKS))
def test_a_load_breaking_an_error_rule_is_blocked_and_the_other_load_publishes(
    con, tmp_path, check
):
    entries = land(
        con,
        tmp_path,
        "orders",
        {
            "orders_20210902_good.csv": rows_of("orders", "10", 5),
            "orders_20210902_bad.csv": rows_of("orders", "20", 5),
        },
    )
    good, bad = entries["orders_20210902_good.csv"], entries["orders_20210902_bad.csv"]
    con.execute(
        f"update raw.orders set {RAW_BREAKS[check]} where _load_id = ? and _row_number = 2",
        [bad.load_id],
    )
    outcomes = validate_loads(con, ORDERS, [good, bad])
    assert (bad.status, ledger(con, bad.load_id)[0]) == ("blocked", "blocked")
    assert check in bad.reason and bad.reason == ledger(con, bad.load_id)[1]
    assert (good.status, ledger(con, good.load_id)) == ("published", ("published", ""))
    failed = {(o.load_id, o.check_name) for o in outcomes if not o.passed and o.severity == "error"}
    assert failed == {(bad.load_id, check)}
    # In Dagster the check says so with a warning: the blocked load is held back on its own,
    # and dbt and the publish go on with the good one.
    [result] = [
        r for r in asset_check_results(ORDERS, RAW_ORDERS, outcomes) if r.check_name == check
    ]
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["blocked_loads"].value == [bad.load_id]
    # One check_results row per load and check, as METRICS.md defines the table.
    rows = con.execute(
        "select load_id, check_name, severity, passed, observed_value, details "
        "from quality.check_results where check_name != 'quarantine_share'"
    ).fetchall()
    assert len(rows) == 2 * len(SUITES["orders"].checks)
    [broken] = [row for row in rows if row[0] == bad.load_id and row[1] == check]
    assert broken[2:5] == ("error", False, 2.0 if check == "key_unique_in_load" else 1.0)
    assert "row 2" in broken[5]


def test_time_bounds_allow_the_day_after_the_export_date_and_nothing_later(con, tmp_path):
    entries = land(
        con,
        tmp_path,
        "orders",
        {
            "orders_20210902_edge.csv": rows_of(
                "orders", "10", 2, updated_at="2021-09-03 23:59:59"
            ),
            "orders_20210902_late.csv": rows_of(
                "orders", "20", 2, updated_at="2021-09-04 00:00:00"
            ),
            "orders_20210902_early.csv": rows_of("orders", "30", 2, created_at="1999-12-31 08:00"),
        },
    )
    validate_loads(con, ORDERS, entries.values())
    statuses = {name: entry.status for name, entry in entries.items()}
    assert statuses == {
        "orders_20210902_edge.csv": "published",
        "orders_20210902_late.csv": "blocked",
        "orders_20210902_early.csv": "blocked",
    }
    assert "updated_at_in_time_range (2 rows)" in entries["orders_20210902_late.csv"].reason
    assert "created_at_in_time_range" in entries["orders_20210902_early.csv"].reason


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_suite_passes_a_good_load_and_blocks_a_repeated_key(con, tmp_path, entity):
    rows = rows_of(entity, "40", 3)
    entries = land(
        con,
        tmp_path,
        entity,
        {f"{entity}_20210902_good.csv": rows, f"{entity}_20210902_twice.csv": rows + rows[:1]},
    )
    outcomes = validate_loads(con, ENTITIES[entity], entries.values())
    assert not [o for o in outcomes if o.error]
    good, twice = entries[f"{entity}_20210902_good.csv"], entries[f"{entity}_20210902_twice.csv"]
    assert good.status == "published"
    assert twice.status == "blocked" and "key_unique_in_load (2 rows)" in twice.reason
    assert {o.check_name for o in outcomes} == {check.name for check in SUITES[entity].checks}


def test_each_sql_check_scans_the_new_loads_once(con, tmp_path):
    """GX's own UnexpectedRowsExpectation runs its query twice (a count, then every row);
    the gate's sends it once, as a count, for the whole batch. Splitting a failing check by
    load is the gate's own query to DuckDB, not GX's."""
    import sqlalchemy as sa

    entries = land(
        con,
        tmp_path,
        "orders",
        {
            "orders_20210902_good.csv": rows_of("orders", "40", 3),
            "orders_20210902_twice.csv": rows_of("orders", "50", 2) * 2,
        },
    )
    marker = "' repeated'"  # in key_unique_in_load's query only
    queries: list[str] = []

    def record(_conn, _cursor, statement, *_):
        if marker in statement:
            queries.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        validate_loads(con, ORDERS, entries.values())
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    assert len(queries) == 1 and queries[0].startswith("SELECT COUNT(*)")
    assert "key_unique_in_load" in entries["orders_20210902_twice.csv"].reason


def test_a_missing_required_column_blocks_every_load(con, tmp_path):
    entries = land(con, tmp_path, "violations", {"violations_20210902.csv": [violation()]})
    con.execute("alter table raw.violations drop column violation_status")
    [entry] = entries.values()
    validate_loads(con, ENTITIES["violations"], [entry])
    assert entry.status == "blocked"
    assert "required_columns_present" in entry.reason
    assert "violation_status" in entry.reason  # its own checks could not be evaluated


def test_warn_findings_are_reported_and_never_block(con, tmp_path):
    orders = land(
        con,
        tmp_path,
        "orders",
        {
            "orders_20210902.csv": [
                order("1000000001", paid_amount="100.00"),
                order("1000000002", paid_at="2021-09-01 19:00:00"),  # paid before created
                order("1000000003", channel="直播", live_session_id=""),  # live, no session
            ]
        },
    )
    validate_loads(con, ORDERS, orders.values())
    refunds = land(
        con,
        tmp_path,
        "refunds",
        {
            "refunds_20210903.csv": [
                refund("R1", "1000000001", refund_amount="150.00"),  # above the 100 paid
                refund("R2", "9999999999"),  # an order in no published load
            ]
        },
    )
    outcomes = validate_loads(con, REFUNDS, refunds.values())
    assert all(entry.status == "published" for entry in [*orders.values(), *refunds.values()])
    warned = con.execute(
        "select check_name, observed_value, details from quality.check_results "
        "where severity = 'warn' and not passed order by check_name"
    ).fetchall()
    assert [(name, observed) for name, observed, _ in warned] == [
        ("live_orders_have_session", 1.0),
        ("paid_at_not_before_created_at", 1.0),
        ("refund_order_known", 1.0),
        ("refund_within_order_amount", 1.0),
    ]
    assert "150.00 > 100.00 paid for order 1000000001" in warned[3][2]
    assert "unknown order 9999999999" in warned[2][2]
    results = {
        result.check_name: result
        for result in asset_check_results(REFUNDS, dg.AssetKey(["raw", "refunds"]), outcomes)
    }
    finding = results["refund_order_known"]
    assert not finding.passed and finding.severity == dg.AssetCheckSeverity.WARN
    assert results["key_unique_in_load"].passed


def test_a_row_count_far_from_the_trailing_average_warns(con, tmp_path):
    for day in range(1, 4):
        entries = land(
            con, tmp_path, "fans", {f"fans_2021090{day}.csv": rows_of("fans", str(day), 4)}
        )
        validate_loads(con, ENTITIES["fans"], entries.values())
    entries = land(
        con,
        tmp_path,
        "fans",
        {
            "fans_20210904_big.csv": rows_of("fans", "5", 50),
            "fans_20210904.csv": rows_of("fans", "6", 5),
        },
    )
    outcomes = validate_loads(con, ENTITIES["fans"], entries.values())
    flagged = {o.load_id: o.details for o in outcomes if o.check_name == "row_count_near_average"}
    big, normal = entries["fans_20210904_big.csv"], entries["fans_20210904.csv"]
    assert "50 rows; trailing average 4.0 over the last 3 published loads" in flagged[big.load_id]
    assert flagged[normal.load_id] == "passed on 5 rows"
    assert big.status == normal.status == "published"


def test_when_gx_cannot_validate_the_loads_are_blocked_and_the_blocking_checks_fail(
    con, tmp_path, monkeypatch
):
    entries = land(con, tmp_path, "orders", {"orders_20210902.csv": [order()]})

    def broken(*_args, **_kwargs):
        raise RuntimeError("the GX datasource is gone")

    monkeypatch.setattr(expectations, "_run_checkpoint", broken)
    outcomes = validate_loads(con, ORDERS, entries.values())
    [entry] = entries.values()
    assert entry.status == "blocked"
    assert entry.reason.startswith(
        "could not be validated: RuntimeError: the GX datasource is gone"
    )
    results = asset_check_results(ORDERS, RAW_ORDERS, outcomes)
    blocking = [result for result in results if result.check_name == "key_unique_in_load"]
    assert not blocking[0].passed and blocking[0].metadata["could_not_validate"].value == [
        entry.load_id
    ]
    assert blocking[0].severity == dg.AssetCheckSeverity.ERROR  # stops dbt and the publish


def test_a_load_gx_could_not_validate_is_validated_again_and_publishes(con, tmp_path, monkeypatch):
    """Validated again in a later run, with that run's new load: the batch reaches back to
    the earliest load time among its loads."""
    entries = land(
        con,
        tmp_path,
        "orders",
        {"orders_20210902.csv": [order()], "orders_20210903.csv": [order(), order()]},
    )

    def broken(*_args, **_kwargs):
        raise RuntimeError("the GX datasource is gone")

    monkeypatch.setattr(expectations, "_run_checkpoint", broken)
    validate_loads(con, ORDERS, entries.values())
    monkeypatch.undo()
    again = expectations.unvalidated_loads(con, ORDERS)
    assert sorted(entry.file_name for entry in again) == sorted(entries)
    later = land(
        con,
        tmp_path,
        "orders",
        {"orders_20210904.csv": [order("1000000004")]},
        loaded_at=LOADED_AT + timedelta(days=1),
    )
    new = later["orders_20210904.csv"]
    validate_loads(con, ORDERS, [*again, new])
    good, repeated = (entries[name].load_id for name in sorted(entries))
    assert ledger(con, good) == ledger(con, new.load_id)
    assert ledger(con, good) == ("published", "")
    status, reason = ledger(con, repeated)  # now validated: blocked for its data, for good
    assert status == "blocked" and reason.startswith("failed error-level checks: key_unique")
    assert expectations.unvalidated_loads(con, ORDERS) == []


def test_checks_are_declared_for_dagster_without_importing_gx():
    code = (
        "import sys; from dagster_project.defs.ingest.assets import GATE_CHECKS; "
        "print(len(GATE_CHECKS), 'great_expectations' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == [str(sum(len(suite.checks) for suite in SUITES.values())), "False"]
    specs = {spec.name: spec for spec in asset_check_specs(ORDERS, dg.AssetKey(["raw", "orders"]))}
    assert specs["key_unique_in_load"].blocking and not specs["row_count_near_average"].blocking
    assert "only when the gate could not do its job" in specs["order_id_not_null"].description


def test_gx_is_imported_and_its_expectations_declared_once_when_the_gate_races_the_import():
    """The ingest step imports GX in the background; a gate that asks for it meanwhile waits,
    and the gate's own expectation class is declared to GX once (GX prints a notice for a
    second declaration, which would land in the run's output)."""
    code = (
        "from dagster_project.defs.quality import expectations as e; "
        "e.import_gx_in_background(); gx = e._gx(); "
        "print(e._EXPECTATIONS['UnexpectedRowsExpectation'].__name__, e._gx() is gx)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["ExpectQueryToReturnNoRows", "True"]
    assert "Overwriting" not in result.stdout + result.stderr


def test_the_quarantine_share_check_warns_of_the_loads_it_blocked_and_never_stops_the_run():
    from dagster_project.defs.ingest.assets import quarantine_share
    from dagster_project.defs.ingest.loader import LedgerEntry

    def entry(load_id: str, status: str, read: int, quarantined: int) -> LedgerEntry:
        return LedgerEntry(
            load_id, "orders", f"{load_id}.csv", "0" * 64, None, status, read, 0, quarantined
        )

    entries = [
        entry("ok", "published", 100, 5),  # 5%: at the threshold, allowed
        entry("bad", "blocked", 100, 6),
        entry("gone", "rejected", 0, 0),
    ]
    result = quarantine_share(ORDERS, entries, threshold=0.05)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["blocked_loads"].value == ["bad"]
    assert result.metadata["new_loads"].value == 2
    assert "blocked 1 load" in result.description
    within = quarantine_share(ORDERS, entries[:1] + entries[2:], threshold=0.05)
    assert within.passed and within.metadata["blocked_loads"].value == []


def test_a_corrected_file_supersedes_the_blocked_load(con, tmp_path):
    bad = rows_of("orders", "10", 3) + rows_of("orders", "10", 1)
    [first] = land(con, tmp_path, "orders", {"orders_20210902.csv": bad}).values()
    validate_loads(con, ORDERS, [first])
    assert first.status == "blocked"
    [second] = land(con, tmp_path, "orders", {"orders_20210902.csv": bad[:3]}).values()
    validate_loads(con, ORDERS, [second])
    assert second.status == "published"
    status, reason = ledger(con, first.load_id)
    assert status == "blocked" and reason.endswith(f"; superseded by {second.load_id}")


# --- trustwh release ---------------------------------------------------------------------


def test_release_refuses_unknown_and_unblocked_loads_with_a_message(con, tmp_path):
    [entry] = land(con, tmp_path, "orders", {"orders_20210902.csv": [order()]}).values()
    validate_loads(con, ORDERS, [entry])
    con.close()
    warehouse = tmp_path / "warehouse.duckdb"
    code, output = trustwh("release", "nope-123", "--reason", "x", "--home", tmp_path)
    assert code == 2 and "there is no load nope-123" in output and "Traceback" not in output
    code, output = trustwh("release", entry.load_id, "--reason", "x", "--home", tmp_path)
    assert code == 2 and "is published, not blocked" in output
    code, output = trustwh("release", "x", "--reason", "x", "--home", tmp_path / "elsewhere")
    assert code == 2 and "no working database" in output
    assert query(warehouse, "select count(*) from quality.releases") == [(0,)]


def test_release_says_so_when_a_build_holds_the_database(con, tmp_path):
    con.close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', "
            "flush=True); time.sleep(60)",
            str(tmp_path / "warehouse.duckdb"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        code, output = trustwh("release", "any", "--reason", "x", "--home", tmp_path)
    finally:
        holder.kill()
        holder.wait()
    assert code == 2 and "in use by a running build" in output and "Traceback" not in output


def test_release_waits_for_no_run_and_holds_the_home_while_it_writes(con, tmp_path):
    entry = land(con, tmp_path, "orders", {"orders_20210902.csv": [order(), order("x")]})
    [blocked] = entry.values()
    validate_loads(con, ORDERS, [blocked])
    con.close()
    assert query(tmp_path / "warehouse.duckdb", "select status from quality.load_ledger") == [
        ("blocked",)
    ]
    held = lock_home(tmp_path)  # as a run building the home holds it
    try:
        code, output = trustwh("release", blocked.load_id, "--reason", "x", "--home", tmp_path)
    finally:
        unlock_home(held)
    said = " ".join(output.split())
    assert code == 2 and f"a run is building {tmp_path} (process {os.getpid()}" in said, output
    assert "release the load when it has finished" in said and "Traceback" not in output
    assert query(tmp_path / "warehouse.duckdb", "select count(*) from quality.releases") == [(0,)]
    code, output = trustwh("release", blocked.load_id, "--reason", "x", "--home", tmp_path)
    assert code == 0, output
    assert home_busy(tmp_path) is None  # and it let go


# --- The whole job: `trustwh run`, release, a corrected re-export, run again --------------


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    """Run 1 over a good load and two bad ones; release one, land a fix for the other, run 2."""
    root = tmp_path_factory.mktemp("gate")
    landing, home = root / "landing", root / "home"
    write_export(
        landing,
        "orders",
        "orders_20210902_S001.csv",
        [
            order("1000000001", buyer_id="B1"),
            order("1000000002", buyer_id="B2", paid_at="2021-09-01 19:00:00"),  # warn: paid early
            order(
                "1000000003", buyer_id="B3", channel="直播", live_session_id=""
            ),  # warn: no session
        ],
    )
    duplicated = [
        order(f"20000000{index:02d}", store_id="S002", store_name="盼姐美妆", buyer_id=f"C{index}")
        for index in range(3)
    ]
    write_export(
        landing, "orders", "orders_20210902_S002.csv", [*duplicated, duplicated[0]]
    )  # error: a key twice in the load
    write_export(
        landing,
        "orders",
        "orders_20210902_S003.csv",
        [
            order(
                f"30000000{index:02d}",
                store_id="S003",
                buyer_id=f"D{index}",
                updated_at="2021-09-10 10:00:00",
            )  # error: updated after the export date + 1 day
            for index in range(2)
        ],
    )
    write_export(
        landing,
        "refunds",
        "refunds_20210903.csv",
        [
            refund("R1", "1000000001", refund_amount="150.00"),  # warn: above the 100 paid
            refund("R2", "2000000000", store_id="S002", buyer_id="C0"),  # warn: order not published
        ],
    )
    first = trustwh("run", "--landing", landing, "--home", home)
    warehouse = home / "warehouse.duckdb"
    loads = dict(query(warehouse, "select file_name, load_id from quality.load_ledger"))
    state = {
        "ledger": query(
            warehouse, "select load_id, status, reason from quality.load_ledger order by 1"
        ),
        "stg_loads": query(warehouse, "select distinct load_id from staging.stg_orders"),
        "stores": query(
            home / "serving.duckdb",
            "select distinct store_id from marts.store_monthly_repurchase order by 1",
        ),
    }
    release = trustwh(
        "release",
        loads["orders_20210902_S003.csv"],
        "--reason",
        "the store confirmed the update times",
        "--home",
        home,
    )
    write_export(landing, "orders", "orders_20210902_S002.csv", duplicated)  # the fix
    time.sleep(1)  # check_results of run 2 start a second after run 1's
    second_started = datetime.now().replace(microsecond=0)
    second = trustwh("run", "--landing", landing, "--home", home)
    return {
        "root": root,
        "home": home,
        "first": first,
        "first_state": state,
        "loads": loads,
        "release": release,
        "second": second,
        "second_started": second_started,
    }


@pytest.mark.slow
def test_run_blocks_the_bad_loads_and_publishes_the_good_one(gated):
    code, output = gated["first"]
    assert code == 0, output
    output = " ".join(output.split())  # as printed, long lines wrap
    assert "Traceback" not in output and "succeeded" in output
    loads = gated["loads"]
    ledger = {
        load_id: (status, reason) for load_id, status, reason in gated["first_state"]["ledger"]
    }
    assert ledger[loads["orders_20210902_S001.csv"]] == ("published", "")
    assert ledger[loads["refunds_20210903.csv"]] == ("published", "")
    status, reason = ledger[loads["orders_20210902_S002.csv"]]
    assert status == "blocked" and "key_unique_in_load (2 rows)" in reason
    status, reason = ledger[loads["orders_20210902_S003.csv"]]
    assert status == "blocked" and "updated_at_in_time_range (2 rows)" in reason
    # The summary names the blocked files and why.
    assert "orders/orders_20210902_S002.csv blocked: failed error-level checks" in output
    # Blocked rows are in raw, but not in staging and not in the marts.
    assert gated["first_state"]["stg_loads"] == [(loads["orders_20210902_S001.csv"],)]
    assert gated["first_state"]["stores"] == [("S001",)]


@pytest.mark.slow
def test_warn_findings_reach_the_serving_quality_tables_and_do_not_block(gated):
    serving = gated["home"] / "serving.duckdb"
    warned = query(
        serving,
        "select ledger.file_name, results.check_name from quality.check_results as results "
        "inner join quality.load_ledger as ledger on results.load_id = ledger.load_id "
        "where results.severity = 'warn' and not results.passed order by 1, 2",
    )
    assert warned == [
        ("orders_20210902_S001.csv", "live_orders_have_session"),
        ("orders_20210902_S001.csv", "paid_at_not_before_created_at"),
        ("refunds_20210903.csv", "refund_order_known"),
        ("refunds_20210903.csv", "refund_within_order_amount"),
    ]


@pytest.mark.slow
def test_release_publishes_a_blocked_load_and_records_who_and_why(gated):
    code, output = gated["release"]
    assert code == 0, output
    assert "trustwh run" in output
    load_id = gated["loads"]["orders_20210902_S003.csv"]
    serving = gated["home"] / "serving.duckdb"
    [(released_by, reason, blocked_reason)] = query(
        serving,
        "select released_by, reason, blocked_reason from quality.releases where load_id = ?",
        [load_id],
    )
    assert released_by == getpass.getuser()
    assert reason == "the store confirmed the update times"
    assert "updated_at_in_time_range" in blocked_reason
    assert query(
        serving, "select status from quality.load_ledger where load_id = ?", [load_id]
    ) == [("published",)]
    code, output = gated["second"]
    assert code == 0, output
    stores = query(serving, "select distinct store_id from marts.store_monthly_repurchase")
    assert {store for (store,) in stores} == {"S001", "S002", "S003"}


@pytest.mark.slow
def test_the_report_shows_a_released_load_with_who_when_and_why(gated):
    load_id = gated["loads"]["orders_20210902_S003.csv"]
    [(released_at,)] = query(
        gated["home"] / "serving.duckdb",
        "select released_at from quality.releases where load_id = ?",
        [load_id],
    )
    page = (gated["home"] / "quality" / "index.html").read_text()
    assert '<div class="value">1</div><div class="label">released</div>' in page
    all_loads = page.split('<section id="loads">')[1].split("</section>")[0]
    [row] = [row for row in all_loads.split("<tr>") if load_id in row]
    assert '<span class="badge released">released</span>' in row
    assert "the store confirmed the update times" in row
    assert f"released by {getpass.getuser()} at {released_at:%Y-%m-%d %H:%M}" in row


@pytest.mark.slow
def test_a_fixed_re_export_supersedes_the_blocked_load(gated):
    warehouse = gated["home"] / "warehouse.duckdb"
    old = gated["loads"]["orders_20210902_S002.csv"]
    rows = query(
        warehouse,
        "select load_id, status, reason from quality.load_ledger "
        "where file_name = 'orders_20210902_S002.csv' order by loaded_at",
    )
    assert len(rows) == 2
    (first_id, first_status, first_reason), (new_id, new_status, _) = rows
    assert first_id == old and first_status == "blocked"
    assert first_reason.endswith(f"; superseded by {new_id}")
    assert new_status == "published"
    visible = query(warehouse, "select distinct load_id from staging.stg_orders order by 1")
    assert (old,) not in visible and (new_id,) in visible


@pytest.mark.slow
def test_the_second_run_validates_only_its_new_load(gated):
    warehouse = gated["home"] / "warehouse.duckdb"
    validated = query(
        warehouse,
        "select distinct load_id from quality.check_results where checked_at >= ?",
        [gated["second_started"]],
    )
    new = query(
        warehouse,
        "select load_id from quality.load_ledger where file_name = 'orders_20210902_S002.csv' "
        "and load_id != ?",
        [gated["loads"]["orders_20210902_S002.csv"]],
    )
    assert validated == new
    repeated = query(
        warehouse,
        "select load_id, check_name from quality.check_results group by all having count(*) > 1",
    )
    assert repeated == []


@pytest.mark.slow
def test_a_run_with_every_load_blocked_completes_and_a_gate_failure_fails_it(tmp_path, monkeypatch):
    landing, home = tmp_path / "landing", tmp_path / "home"
    write_export(
        landing, "orders", "orders_20210902.csv", [order(), order()]
    )  # a key twice: blocked
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    output = " ".join(output.split())
    assert "orders/orders_20210902.csv blocked: failed error-level checks: key_unique" in output
    assert query(
        home / "serving.duckdb", "select count(*) from marts.store_monthly_repurchase"
    ) == [(0,)]

    def broken(*_args, **_kwargs):
        raise RuntimeError("the GX datasource is gone")

    monkeypatch.setattr(expectations, "_run_checkpoint", broken)
    write_export(landing, "orders", "orders_20210903.csv", [order("1000000009")])
    before = (home / "serving.duckdb").stat().st_mtime_ns
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 1, output
    output = " ".join(output.split())
    assert "blocking asset check" in output and "Traceback" not in output
    assert "could not be validated: RuntimeError: the GX datasource is gone" in output
    assert (home / "serving.duckdb").stat().st_mtime_ns == before  # nothing published

    # GX works again: the next run, with nothing new landed, validates the load it could not
    # validate, and it publishes; the load blocked for its data stays blocked.
    monkeypatch.undo()
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    statuses = query(
        home / "serving.duckdb",
        "select file_name, status from quality.load_ledger order by file_name",
    )
    assert statuses == [("orders_20210902.csv", "blocked"), ("orders_20210903.csv", "published")]


def test_gx_results_and_pages_older_than_the_retention_are_pruned(tmp_path):
    from datetime import timedelta

    site = tmp_path / expectations.DATA_DOCS_INDEX.parent
    runs = {"old": "20260101T000000.000001Z", "new": "20261120T120000.000001Z"}
    for root in (tmp_path / "uncommitted" / "validations", site / "validations"):
        for stamp in runs.values():
            folder = root / "raw" / "orders" / "__none__" / stamp
            folder.mkdir(parents=True)
            (folder / "warehouse-raw.orders.json").write_text("{}")
    (site / "index.html").write_text("index")
    now = datetime(2026, 11, 25)
    removed = expectations.prune_validations(tmp_path, now, kept=timedelta(days=90))
    assert removed == 2
    left = sorted(path.name for path in tmp_path.rglob("*Z"))
    assert left == [runs["new"], runs["new"]]
    assert (site / "index.html").read_text() == "index"
    assert expectations.prune_validations(tmp_path, now, kept=timedelta(days=90)) == 0


def test_the_run_renders_data_docs_once_and_a_rendering_error_blocks_nothing(tmp_path, monkeypatch):
    """The ingest step renders GX's pages after the last export. If GX cannot render them,
    the run says so in a warning and the loads it validated still publish."""
    from dagster_project.defs.ingest.assets import ingest_exports
    from dagster_project.defs.quality.data_docs import DATA_DOCS_INDEX
    from dagster_project.defs.resources import WarehouseResource

    landing, home = tmp_path / "landing", tmp_path / "home"
    write_export(landing, "orders", "orders_20210902.csv", [order("1000000001")])
    write_export(landing, "refunds", "refunds_20210902.csv", [refund("R1", "1000000001")])
    builds = []
    real_build = expectations.DataDocs.build

    def counted(docs):
        builds.append(len(docs.pending))
        real_build(docs)

    monkeypatch.setattr(expectations.DataDocs, "build", counted)
    warehouse = WarehouseResource(home=str(home), landing=str(landing))
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [ingest_exports], resources={"warehouse": warehouse}, instance=instance
        )
    assert result.success
    assert builds == [2]  # once, for the orders and the refunds validations
    site = home / "quality" / "gx" / DATA_DOCS_INDEX.parent
    assert (site / "index.html").is_file()
    # Every suite has its page, and the index links each one and both results.
    suites = sorted(path.stem for path in (site / "expectations").rglob("*.html"))
    assert suites == sorted(ENTITIES)
    index = (site / "index.html").read_text()
    for name in ENTITIES:
        assert f"expectations/raw/{name}.html" in index
    assert index.count("validations/raw/") >= 2

    def broken(docs):
        raise RuntimeError("no template")

    monkeypatch.setattr(expectations.DataDocs, "build", broken)
    write_export(landing, "orders", "orders_20210903.csv", [order("1000000002")])
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [ingest_exports], resources={"warehouse": warehouse}, instance=instance
        )
        warnings = [
            event.user_message
            for event in instance.all_logs(result.run_id)
            if "GX Data Docs not built" in event.user_message
        ]
    assert result.success
    assert warnings and "RuntimeError: no template" in warnings[0]
    statuses = query(
        home / "warehouse.duckdb",
        "select file_name, status from quality.load_ledger order by file_name",
    )
    assert statuses == [
        ("orders_20210902.csv", "published"),
        ("orders_20210903.csv", "published"),
        ("refunds_20210902.csv", "published"),
    ]
