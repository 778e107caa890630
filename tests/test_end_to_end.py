"""The whole job, as a user runs it: `trustwh generate --dirty`, `trustwh run`, and again."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.dbt.project import dbt_project
from dagster_project.defs.publish.serving import (
    PublishError,
    build_state,
    project_state,
    project_tables,
    publish,
)
from dagster_project.sample_data.generate import generate

from .exports import order, refund, write_export
from .runs import dbt, mart_fingerprints, query, trustwh

pytestmark = pytest.mark.slow

METRICS_MARTS = {
    "store_cohort_retention",
    "platform_cohort_retention",
    "store_monthly_repurchase",
    "platform_monthly_repurchase",
    "live_session_performance",
    "store_refunds_monthly",
    "store_violations_monthly",
    "store_compliance",
    "seasonal_gift_list",
}


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    """A dirty sample landing and one run over it."""
    root = tmp_path_factory.mktemp("dirty")
    summary = generate(root / "landing", scale=0.03, months=6, dirty=True)
    code, output = trustwh("run", "--landing", root / "landing", "--home", root / "home")
    return root, summary, code, output


def test_a_dirty_landing_runs_to_the_end_with_a_clear_summary(dirty):
    root, _, code, output = dirty
    assert code == 0, output
    assert "Traceback" not in output
    assert "succeeded" in output and "blocked" in output and "rejected" in output
    assert (root / "home" / "serving.duckdb").exists()
    # The files to look at are listed once, in the summary: the ingest's warning per file is
    # for the Dagster UI, not a line of the CLI's progress.
    assert "warning ingest" not in " ".join(output.split()), output


def test_every_file_and_row_is_accounted_for(dirty):
    root, summary, _, _ = dirty
    warehouse = root / "home" / "warehouse.duckdb"
    landed = sorted(
        path.relative_to(root / "landing").as_posix()
        for path in (root / "landing").rglob("*")
        if path.is_file()
    )
    # A file's path in the landing folder: a file outside the export folders is recorded by it.
    path = "case when entity = 'landing' then file_name else entity || '/' || file_name end"
    ledger = query(warehouse, f"select {path} from quality.load_ledger")
    assert sorted(row[0] for row in ledger) == landed  # one ledger row per landed file
    unbalanced = query(
        warehouse,
        "select file_name from quality.load_ledger "
        "where rows_read != rows_loaded + rows_quarantined",
    )
    assert unbalanced == []
    for case in summary.dirty.values():
        [(status, rows_read, quarantined, reason)] = query(
            warehouse,
            "select status, rows_read, rows_quarantined, reason from quality.load_ledger "
            f"where {path} = ?",
            [case.file],
        )
        assert status == case.expect, (case.name, reason)
        if case.data_rows is not None and status != "duplicate":
            assert (rows_read, quarantined) == (case.data_rows, case.bad_rows), case.name
        if status != "published":
            assert reason, case.name


def test_blocked_loads_stay_out_of_the_marts(dirty):
    root, _, _, _ = dirty
    warehouse = root / "home" / "warehouse.duckdb"
    blocked = query(
        warehouse,
        "select count(*) from raw.orders where _load_id in "
        "(select load_id from quality.load_ledger where status = 'blocked')",
    )[0][0]
    visible = query(
        warehouse,
        "select count(*) from staging.stg_orders where load_id in "
        "(select load_id from quality.load_ledger where status != 'published')",
    )[0][0]
    assert blocked > 0 and visible == 0


def test_serving_has_every_mart_and_no_personal_data(dirty):
    root, _, _, _ = dirty
    serving = root / "home" / "serving.duckdb"
    tables = {
        f"{schema}.{name}"
        for schema, name in query(
            serving, "select table_schema, table_name from information_schema.tables"
        )
    }
    assert {f"marts.{name}" for name in METRICS_MARTS} <= tables
    assert {"quality.load_ledger", "quality.quarantine", "quality.check_results"} <= tables
    assert not any(name.startswith(("raw.", "staging.", "intermediate.")) for name in tables)
    # The marts' NOT NULL columns are NOT NULL in serving too, for the BI tools that show it.
    not_null = (
        "select table_name, column_name from information_schema.columns "
        "where table_schema = 'marts' and is_nullable = 'NO' order by all"
    )
    served_not_null = query(serving, not_null)
    assert len(served_not_null) >= 100
    assert served_not_null == query(root / "home" / "warehouse.duckdb", not_null)
    columns = query(
        serving,
        "select table_schema, table_name, column_name from information_schema.columns "
        "where data_type in ('VARCHAR', 'JSON')",
    )
    assert not [c for c in columns if c[2] in ("receiver_phone", "receiver_address")]
    addresses = {
        row[0]
        for row in query(
            root / "home" / "warehouse.duckdb",
            "select distinct receiver_address from raw.orders where receiver_address is not null",
        )
    }
    # A mainland mobile number standing alone (hashes and ids are longer alphanumeric runs).
    mobile = re.compile(r"(?<![0-9A-Za-z])1[3-9][0-9]{9}(?![0-9A-Za-z])")
    with duckdb.connect(str(serving), read_only=True) as con:
        for schema, table, column in columns:
            values = con.execute(f'select distinct "{column}" from {schema}.{table}').fetchall()
            for (value,) in values:
                if value is None:
                    continue
                assert not mobile.search(value), (schema, table, column, value)
                assert not any(address in value for address in addresses), (table, column)


def test_every_served_table_and_column_carries_its_description(dirty):
    """BI tools show a DuckDB table's and column's comment beside the data: the marts' come
    from their dbt models, the pipeline's quality tables' from the publish."""
    root, _, _, _ = dirty
    serving = root / "home" / "serving.duckdb"
    tables = query(
        serving, "select schema_name, table_name, comment from duckdb_tables() order by all"
    )
    assert len(tables) >= 20 and [t[:2] for t in tables if not t[2]] == []
    assert ("marts", "store_daily_gmv") in {t[:2] for t in tables}
    columns = query(
        serving,
        "select schema_name, table_name, column_name, comment from duckdb_columns() "
        "where not internal order by all",
    )
    assert [c[:3] for c in columns if not c[3]] == []
    comment = {c[:3]: c[3] for c in columns}
    assert "masked" in comment["quality", "quarantine", "raw_record"]
    assert "data as of" in comment["quality", "freshness", "published_at"]
    assert comment["marts", "store_daily_gmv", "store_id"] == (
        "Store (小店) identifier as the platform exports it."
    )


def test_a_rerun_changes_nothing_and_readers_keep_reading(dirty):
    root, _, _, _ = dirty
    serving = root / "home" / "serving.duckdb"
    warehouse = root / "home" / "warehouse.duckdb"
    before = mart_fingerprints(serving)
    ledger_before = query(warehouse, "select * from quality.load_ledger order by load_id")
    reader = duckdb.connect(str(serving), read_only=True)  # a BI user, connected throughout
    try:
        code, output = trustwh("run", "--landing", root / "landing", "--home", root / "home")
        assert code == 0 and "No run started" in " ".join(output.split()), output
        # The job itself, forced, finds nothing new either: dbt and publish are skipped.
        code, output = trustwh(
            "run", "--landing", root / "landing", "--home", root / "home", "--force"
        )
        assert code == 0 and "nothing new to publish" in output, output
        assert reader.execute("select count(*) from marts.store_monthly_repurchase").fetchone()
    finally:
        reader.close()
    assert query(warehouse, "select * from quality.load_ledger order by load_id") == ledger_before
    assert mart_fingerprints(serving) == before


INCREMENTAL_MODELS = {  # name: whether its rows carry `loaded_at`
    "int_orders_current": True,
    "int_refunds_current": True,
    "int_fan_snapshots": True,
    "int_fans_latest_snapshot": True,
    "int_fan_club_level_history": False,
    "int_buyer_store_months": False,
    "int_buyer_months": False,
    "int_buyer_refund_windows": False,
}


def _current_versions(warehouse) -> dict[str, list[tuple]]:
    """The incremental models' rows; `loaded_at` is when a home loaded them, so it differs."""
    return {
        name: query(
            warehouse,
            f"select * {'exclude (loaded_at)' if stamped else ''} "
            f"from intermediate.{name} order by all",
        )
        for name, stamped in INCREMENTAL_MODELS.items()
    }


def test_runs_on_a_growing_landing_build_what_one_run_on_all_of_it_builds(dirty, tmp_path):
    """Incremental models: three runs, each landing a third of the files by export date (later
    thirds re-export orders and refunds of earlier ones, with newer and with equal times),
    leave the same current versions and marts as the single run over everything."""
    root, _, _, _ = dirty
    files = sorted((root / "landing").glob("*/*"), key=lambda path: (path.name[-12:], path.name))
    landing, home = tmp_path / "landing", tmp_path / "home"
    home.mkdir()
    shutil.copy2(root / "home" / "pii.key", home / "pii.key")  # the same pseudonyms
    third = len(files) // 3 + 1
    for start in range(0, len(files), third):
        for path in files[start : start + third]:
            target = landing / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        code, output = trustwh("run", "--landing", landing, "--home", home)
        assert code == 0, output
        if start == 0:
            docs_made = (home / "docs" / "catalog.json").stat().st_mtime_ns
        else:  # dbt's parse of the run before, in HOME/dbt-target, is reused
            dbt_log = max((home / "logs").glob("run-*.log"), key=lambda path: path.name)
            assert "Unable to do partial parsing" not in dbt_log.read_text(), dbt_log
    # The docs describe the project, which did not change: generated once, then kept.
    assert (home / "docs" / "catalog.json").stat().st_mtime_ns == docs_made
    assert _current_versions(home / "warehouse.duckdb") == _current_versions(
        root / "home" / "warehouse.duckdb"
    )
    assert mart_fingerprints(home / "serving.duckdb") == mart_fingerprints(
        root / "home" / "serving.duckdb"
    )
    # The incremental marts' own tables (`__changed`) stay in the working database.
    assert query(home / "warehouse.duckdb", "select count(*) from marts.store_daily_gmv__changed")
    served = "select table_name from information_schema.tables where contains(table_name, '__')"
    assert query(home / "serving.duckdb", served) == []

    # A new pseudonym key, nothing landed: the incremental tables are rebuilt under it.
    key = "a-rotated-pseudonym-key-0123456789"
    (home / "pii.key").write_text(key)
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0 and "No run started" not in " ".join(output.split()), output
    rows = query(
        home / "warehouse.duckdb",
        "select raw.receiver_phone, current.receiver_phone_hash "
        "from intermediate.int_orders_current as current inner join raw.orders as raw "
        "on raw._load_id = current.load_id and raw._row_number = current.source_row_number "
        "where raw.receiver_phone is not null",
    )
    assert rows
    for phone, pseudonym in rows:
        assert pseudonym == hmac.new(key.encode(), phone.encode(), hashlib.sha256).hexdigest()


def _fan(fan_id: str, day: str, level: str) -> dict[str, str]:
    return {
        "snapshot_date": day,
        "store_id": "S001",
        "fan_id": fan_id,
        "followed_at": "2021-11-01 20:00:00",
        "is_following": "是",
        "fan_club_level": level,
        "fan_club_joined_at": "2021-11-01 20:00:00",
    }


def _two_homes(tmp_path) -> tuple:
    """Two empty homes with one pseudonym key: one built day by day, one in a single run."""
    homes = tmp_path / "incremental", tmp_path / "full"
    for home in homes:
        home.mkdir()
        (home / "pii.key").write_text("one-pseudonym-key-for-both-homes-0123")
    return homes


def _assert_same_build(incremental, full) -> None:
    assert _current_versions(incremental / "warehouse.duckdb") == _current_versions(
        full / "warehouse.duckdb"
    )
    assert mart_fingerprints(incremental / "serving.duckdb") == mart_fingerprints(
        full / "serving.duckdb"
    )


def _paid(order_id: str, buyer: str, at: str, **fields: str) -> dict[str, str]:
    return order(
        order_id,
        **({"buyer_id": buyer, "created_at": at, "paid_at": at, "updated_at": at} | fields),
    )


def _day_by_day_and_at_once(tmp_path, days: list[dict[str, tuple[str, list]]]) -> tuple:
    """Each day's files (entity: file name and rows) landed in two homes with one pseudonym
    key: one runs after every day, the other once after the last."""
    first, second = tmp_path / "first", tmp_path / "second"
    incremental, full = _two_homes(tmp_path)
    for day in days:
        for landing in (first, second):
            for entity, (file_name, rows) in day.items():
                write_export(landing, entity, file_name, rows)
        code, output = trustwh("run", "--landing", first, "--home", incremental)
        assert code == 0, output
    code, output = trustwh("run", "--landing", second, "--home", full)
    assert code == 0, output
    return incremental, full


def test_a_day_that_changes_earlier_keys_builds_what_one_run_over_all_of_it_builds(tmp_path):
    """The keys a new load changes beyond its own rows: an order corrected to another buyer
    changes both buyers' months; an order closed leaves its buyer with no purchase; a newer
    snapshot without F2 replaces the store's latest snapshot, and a re-export of the older
    one changes F2's level. The second run recomputes them as one run over both days does."""
    incremental, full = _day_by_day_and_at_once(
        tmp_path,
        [
            {
                "orders": (
                    "orders_20211201.csv",
                    [
                        _paid("1000000001", "B1", "2021-11-05 20:00:00"),
                        _paid("1000000002", "B2", "2021-11-06 20:00:00"),
                        _paid("1000000003", "B3", "2021-11-07 20:00:00"),
                    ],
                ),
                "fans": (
                    "fans_20211201.csv",
                    [_fan("F1", "2021-11-30", "3"), _fan("F2", "2021-11-30", "5")],
                ),
            },
            {
                "orders": (
                    "orders_20211202.csv",
                    [
                        _paid(
                            "1000000001",
                            "B4",
                            "2021-11-05 20:00:00",
                            updated_at="2021-12-01 09:00:00",
                        ),
                        _paid(
                            "1000000002",
                            "B2",
                            "2021-11-06 20:00:00",
                            order_status="已关闭",
                            updated_at="2021-12-01 09:00:00",
                        ),
                    ],
                ),
                "fans": (
                    "fans_20211202.csv",
                    [_fan("F2", "2021-11-30", "6"), _fan("F1", "2021-12-01", "3")],
                ),
            },
        ],
    )

    _assert_same_build(incremental, full)
    # What the equality is about: the changes are there, not merely equal on both sides.
    buyers = query(
        incremental / "warehouse.duckdb",
        "select distinct buyer_id from intermediate.int_buyer_months order by 1",
    )
    assert buyers == [("B3",), ("B4",)]
    latest = query(
        incremental / "warehouse.duckdb",
        "select fan_id, snapshot_date from intermediate.int_fans_latest_snapshot",
    )
    assert latest == [("F1", date(2021, 12, 1))]
    history = query(
        incremental / "warehouse.duckdb",
        "select fan_id, fan_club_level from intermediate.int_fan_club_level_history order by 1",
    )
    assert history == [("F1", 3), ("F2", 6)]

    # The grain test of an incremental model reads only the keys its last build replaced:
    # both buyers of the corrected order and the buyer of the closed one.
    warehouse = incremental / "warehouse.duckdb"
    changed = query(warehouse, "select buyer_id from intermediate.int_buyer_months__changed")
    assert sorted(changed) == [("B1",), ("B2",), ("B4",)]
    grain_test = "unique_combination_int_buyer_months_buyer_id__purchase_month"
    for buyer, caught in (("B3", False), ("B4", True)):
        with duckdb.connect(str(warehouse)) as con:
            con.execute(
                "insert into intermediate.int_buyer_months "
                "select * from intermediate.int_buyer_months where buyer_id = ?",
                [buyer],
            )
        result = dbt(incremental, "test", "--select", grain_test)
        assert (result.returncode != 0) == caught, result.stdout[-3000:]

    # The tests of a staging view read the loads the models over it have not built from: a
    # null written into a load built is not read again; once the load is new to
    # int_orders_current (taken out of its state), the test reads it and fails.
    (last_load,) = query(
        warehouse,
        "select load_id from quality.load_ledger where file_name = 'orders_20211202.csv'",
    )[0]
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "insert into raw.orders select * replace (null as order_id) from raw.orders "
            "where _load_id = ? limit 1",
            [last_load],
        )
    staging_test = "not_null_columns_stg_orders"
    assert dbt(incremental, "test", "--select", staging_test).returncode == 0
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "delete from intermediate.int_orders_current__state where load_id = ?", [last_load]
        )
    result = dbt(incremental, "test", "--select", staging_test)
    assert result.returncode != 0, result.stdout[-3000:]
    (outcome,) = json.loads((incremental / "dbt-target" / "run_results.json").read_text())[
        "results"
    ]
    assert (outcome["status"], outcome["failures"]) == ("fail", 1)  # one column: order_id


def test_a_re_export_no_newer_than_what_is_built_leaves_it(tmp_path):
    """With only new loads, an order's current version is the newer of the row built and
    its rows in the new loads. A later file with an older version of order 1 (an earlier
    status) leaves its row; order 2's newer version replaces its row, and so does order 3's
    same version, exported later (ties go to the later export). As one run over both files
    builds."""
    built = [
        _paid(
            "1000000001",
            "B1",
            "2021-11-05 20:00:00",
            order_status="已发货",
            updated_at="2021-11-20 09:00:00",
        ),
        _paid("1000000002", "B2", "2021-11-06 20:00:00"),
        _paid("1000000003", "B3", "2021-11-07 20:00:00"),
    ]
    later = [
        _paid("1000000001", "B1", "2021-11-05 20:00:00"),  # older: still paid
        _paid(
            "1000000002",
            "B2",
            "2021-11-06 20:00:00",
            order_status="已完成",
            updated_at="2021-12-01 09:00:00",
        ),
        built[2],
        _paid("1000000004", "B4", "2021-12-01 10:00:00"),
    ]
    incremental, full = _day_by_day_and_at_once(
        tmp_path,
        [{"orders": ("orders_20211201.csv", built)}, {"orders": ("orders_20211202.csv", later)}],
    )

    current = (
        "select current.order_id, current.order_status, ledger.file_name "
        "from intermediate.int_orders_current as current "
        "inner join quality.load_ledger as ledger on current.load_id = ledger.load_id "
        "order by 1"
    )
    assert query(incremental / "warehouse.duckdb", current) == [
        ("1000000001", "shipped", "orders_20211201.csv"),
        ("1000000002", "completed", "orders_20211202.csv"),
        ("1000000003", "paid", "orders_20211202.csv"),
        ("1000000004", "paid", "orders_20211202.csv"),
    ]
    _assert_same_build(incremental, full)


def test_the_gift_list_follows_refunds_and_snapshots_as_one_run_over_all_of_it(tmp_path):
    """seasonal_gift_list recomputes the buyers a build changed, not only by their purchases:
    a counted refund takes C1 at S002 below 500; S001's new snapshot unfollows B1 and
    follows B3; B4's new order takes them to 500. As one run over both days builds."""
    fans = [
        _fan("B1", "2021-11-30", "3"),
        _fan("B3", "2021-11-30", "3") | {"is_following": "否"},
        _fan("B4", "2021-11-30", "3"),
        _fan("C1", "2021-11-30", "3") | {"store_id": "S002"},
    ]
    s002 = {"store_id": "S002", "store_name": "阿强海鲜"}
    orders = [
        _paid("1000000001", "B1", "2021-11-05 20:00:00", paid_amount="600.00"),
        _paid("1000000003", "B3", "2021-11-06 20:00:00", paid_amount="600.00"),
        _paid("1000000004", "B4", "2021-11-07 20:00:00", paid_amount="400.00"),
        _paid("1000000011", "C1", "2021-11-08 20:00:00", paid_amount="600.00", **s002),
    ]
    refunds = [refund("R1", "1000000011", buyer_id="C1", refund_amount="200.00", **s002)]
    snapshot = [
        _fan("B1", "2021-12-01", "3") | {"is_following": "否"},
        _fan("B3", "2021-12-01", "3"),
        _fan("B4", "2021-12-01", "3"),
    ]
    incremental, full = _day_by_day_and_at_once(
        tmp_path,
        [
            {"orders": ("orders_20211201.csv", orders), "fans": ("fans_20211201.csv", fans)},
            {
                "orders": (
                    "orders_20211202.csv",
                    [_paid("1000000005", "B4", "2021-11-20 20:00:00", paid_amount="100.00")],
                ),
                "refunds": ("refunds_20211202.csv", refunds),
                "fans": ("fans_20211202.csv", snapshot),
            },
        ],
    )
    gift_list = "select store_id, buyer_id, net_spend from marts.seasonal_gift_list order by 1, 2"
    assert query(incremental / "serving.duckdb", gift_list) == [
        ("S001", "B3", Decimal("600.00")),
        ("S001", "B4", Decimal("500.00")),
    ]
    _assert_same_build(incremental, full)


def test_refunds_waiting_for_their_order_follow_it_as_one_run_over_all_of_it(tmp_path):
    """quality.orphan_refunds recomputes the refunds a build changed and those of the orders
    it changed: R2 waits for order 2 until it lands; R3, whose order never lands, still
    waits after a newer version of it; R4 is corrected to order 1. As one run over all three
    days builds."""
    first = [_paid("1000000001", "B1", "2021-11-05 20:00:00")]
    refunds = [refund("R1"), refund("R2", "1000000002"), refund("R4", "1000000009")]
    incremental, full = _day_by_day_and_at_once(
        tmp_path,
        [
            {
                "orders": ("orders_20211201.csv", first),
                "refunds": ("refunds_20211201.csv", refunds),
            },
            {
                "orders": (
                    "orders_20211202.csv",
                    [_paid("1000000002", "B2", "2021-11-06 20:00:00")],
                ),
                "refunds": ("refunds_20211202.csv", [refund("R3", "1000000003")]),
            },
            {
                "refunds": (
                    "refunds_20211203.csv",
                    [
                        refund(
                            "R3",
                            "1000000003",
                            refund_status="已完成",
                            updated_at="2021-12-02 09:00:00",
                        ),
                        refund("R4", updated_at="2021-12-02 09:00:00"),
                    ],
                ),
            },
        ],
    )
    waiting = "select refund_id, refund_status from quality.orphan_refunds order by 1"
    assert query(incremental / "serving.duckdb", waiting) == [("R3", "completed")]
    # Each day was an incremental build of it, not a whole one.
    assert query(incremental / "warehouse.duckdb", "select * from quality.orphan_refunds__changed")
    _assert_same_build(incremental, full)


def _one_order_built(landing, home):
    """A home built from one order; the file of its build basis, which the build wrote."""
    write_export(
        landing, "orders", "orders_20211201.csv", [_paid("1000000001", "B1", "2021-11-05 20:00:00")]
    )
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    basis = home / "dbt-build-basis"
    assert basis.is_file()
    return basis


def _a_second_order_landed(landing, home, monkeypatch):
    """A home built from one order, a second order landed, and the Dagster definitions
    pointed at them as the UI's are: the file of the build basis, and the definitions."""
    basis = _one_order_built(landing, home)
    write_export(
        landing, "orders", "orders_20211202.csv", [_paid("1000000002", "B2", "2021-12-01 20:00:00")]
    )
    monkeypatch.setenv("TRUSTWH_HOME", str(home))
    monkeypatch.setenv("TRUSTWH_LANDING", str(landing))
    from dagster_project.definitions import defs

    return basis, defs


def _full_refresh(home) -> bool:
    """Whether the home's last dbt build was a full refresh."""
    results = json.loads((home / "dbt-target" / "run_results.json").read_text())
    return results["args"].get("full_refresh", False)


def test_a_table_the_project_no_longer_builds_is_not_published(tmp_path):
    """A mart removed or renamed in the dbt project keeps its table in the working database,
    frozen at its last build: BI must not read it as current. (The home's path has a space
    and a quote, which the publish once put into its SQL as they were.)"""
    landing, home = tmp_path / "landing", tmp_path / "the h'ome"
    _one_order_built(landing, home)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        # What a rename of store_daily_gmv and a removed quality model leave behind.
        con.execute("create table marts.daily_gmv as select * from marts.store_daily_gmv")
        con.execute("create table quality.orphan_orders as select 1 as orders")
    write_export(
        landing, "orders", "orders_20211202.csv", [_paid("1000000002", "B2", "2021-12-01 20:00:00")]
    )
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    served = {
        (schema, name)
        for schema, name in query(
            home / "serving.duckdb",
            "select table_schema, table_name from information_schema.tables",
        )
    }
    assert ("marts", "daily_gmv") not in served and ("quality", "orphan_orders") not in served
    assert {name for schema, name in served if schema == "marts"} == {
        name
        for schema, name in project_tables(Path(dbt_project.manifest_path))
        if schema == "marts"
    }
    assert query(home / "serving.duckdb", "select orders from marts.store_daily_gmv") == [
        (1,),
        (1,),
    ]
    said = " ".join(output.split())  # the console wraps long lines
    assert "warning publish serving.duckdb: not published" in said, output
    assert "marts.daily_gmv, quality.orphan_orders" in said, output


def test_a_publish_missing_a_model_of_the_project_publishes_nothing(tmp_path):
    """Every table the project builds must be there to publish: serving.duckdb without one
    would leave BI a mart gone."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    _one_order_built(landing, home)
    warehouse, serving = home / "warehouse.duckdb", home / "serving.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop table marts.store_daily_gmv")
        state = build_state(con, project_state())
    before = serving.stat().st_mtime_ns
    with pytest.raises(PublishError, match=r"has no marts\.store_daily_gmv"):
        publish(warehouse, serving, project_tables(Path(dbt_project.manifest_path)), state)
    assert serving.stat().st_mtime_ns == before


def test_after_a_build_that_did_not_finish_the_next_one_is_a_full_refresh(tmp_path, monkeypatch):
    """The marts incremental by key recompute what the build just before them changed: a
    build that did not finish must not be followed by an incremental one."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    basis = _one_order_built(landing, home)
    assert _full_refresh(home)  # the first build of a home
    write_export(
        landing, "orders", "orders_20211202.csv", [_paid("1000000002", "B2", "2021-12-01 20:00:00")]
    )
    # Imported once a run has parsed the dbt project: the module reads its manifest.
    from dagster_project.defs.dbt import assets as dbt_assets

    environment = dbt_assets._environment
    with monkeypatch.context() as patched:  # DuckDB refuses the memory limit: dbt fails
        patched.setattr(
            dbt_assets,
            "_environment",
            lambda values: environment(values | {"TRUSTWH_MEMORY_LIMIT": "no-such-size"}),
        )
        code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code != 0 and "Traceback" not in output, output
    assert not basis.exists()

    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    assert basis.is_file() and _full_refresh(home)
    assert query(home / "serving.duckdb", "select sum(orders) from marts.store_daily_gmv") == [(2,)]
    write_export(
        landing, "orders", "orders_20211203.csv", [_paid("1000000003", "B3", "2021-12-02 20:00:00")]
    )
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    assert not _full_refresh(home)  # a finished build is followed by an incremental one


def test_after_a_build_of_some_models_only_the_next_one_is_a_full_refresh(tmp_path, monkeypatch):
    """Models materialized from the Dagster UI record what they changed for the models after
    them, which did not run; the next build would read only its own changes and miss those.
    Here int_valid_purchase_changes records a new order that store_daily_gmv, left out, never
    counts unless the next build is a full refresh. Nor is such a selection published: BI
    would read a ledger counting the new load beside a mart that does not hold it."""
    import dagster as dg

    landing, home = tmp_path / "landing", tmp_path / "home"
    basis, defs = _a_second_order_landed(landing, home, monkeypatch)
    left_out = dg.AssetKey(["marts", "store_daily_gmv"])
    selection = [key for key in defs.resolve_all_asset_keys() if key != left_out]
    result = defs.resolve_job_def("trustwh").execute_in_process(
        asset_selection=selection, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "serving__database"
    assert "the marts are not built from the loads" in str(failure.event_specific_data.error)
    assert not basis.exists()
    gmv = "select sum(orders) from marts.store_daily_gmv"
    ledger = "select count(*) from quality.load_ledger where status = 'published'"
    assert query(home / "serving.duckdb", f"select ({gmv}), ({ledger})") == [(1, 1)]

    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    assert basis.is_file() and _full_refresh(home)
    assert query(home / "serving.duckdb", "select sum(orders) from marts.store_daily_gmv") == [(2,)]


def test_a_publish_without_the_models_built_from_the_new_loads_publishes_nothing(
    tmp_path, monkeypatch
):
    """The ingest and the publish selected in the Dagster UI without the dbt models: the
    ledger would count a load whose rows the marts do not hold, and the next run would find
    everything current. The publish fails and says why; the next run builds and publishes."""
    import dagster as dg

    from dagster_project.defs.ingest.assets import LEDGER_KEY, QUARANTINE_KEY
    from dagster_project.defs.publish.assets import SERVING_KEY

    landing, home = tmp_path / "landing", tmp_path / "home"
    _, defs = _a_second_order_landed(landing, home, monkeypatch)
    selection = [
        key
        for key in defs.resolve_all_asset_keys()
        if key.path[0] == "raw" or key in (LEDGER_KEY, QUARANTINE_KEY, SERVING_KEY)
    ]
    result = defs.resolve_job_def("trustwh").execute_in_process(
        asset_selection=selection, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert "the marts are not built from the loads" in str(failure.event_specific_data.error)
    ledger = "select count(*) from quality.load_ledger where status = 'published'"
    assert query(home / "serving.duckdb", ledger) == [(1,)]  # the new load is not shown

    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0 and "No run started" not in " ".join(output.split()), output
    assert query(home / "serving.duckdb", ledger) == [(2,)]
    assert query(home / "serving.duckdb", "select sum(orders) from marts.store_daily_gmv") == [(2,)]


def test_the_checks_of_the_models_alone_neither_publish_nor_cost_a_full_refresh(
    tmp_path, monkeypatch
):
    """ "Execute checks" on the dbt assets in the Dagster UI, with the ingest and the publish:
    the tests run over models built from the earlier loads, so nothing is published; the
    models were not changed, so the next build stays incremental."""
    import dagster as dg

    from dagster_project.defs.dbt.assets import dbt_models
    from dagster_project.defs.ingest.assets import LEDGER_KEY, QUARANTINE_KEY, ingest_exports
    from dagster_project.defs.publish.assets import SERVING_KEY

    landing, home = tmp_path / "landing", tmp_path / "home"
    basis, defs = _a_second_order_landed(landing, home, monkeypatch)
    assets = {
        key
        for key in defs.resolve_all_asset_keys()
        if key.path[0] == "raw" or key in (LEDGER_KEY, QUARANTINE_KEY, SERVING_KEY)
    }
    job = defs.resolve_job_def("trustwh").get_subset(
        asset_selection=assets,
        asset_check_selection=set(dbt_models.check_keys) | set(ingest_exports.check_keys),
    )
    result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    checks = [
        event for event in result.all_events if event.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    assert len(checks) >= len(dbt_models.check_keys) > 50  # the models' tests ran
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "serving__database"
    ledger = "select count(*) from quality.load_ledger where status = 'published'"
    assert query(home / "serving.duckdb", ledger) == [(1,)]
    assert basis.is_file()

    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    assert not _full_refresh(home)
    assert query(home / "serving.duckdb", ledger) == [(2,)]
    assert query(home / "serving.duckdb", "select sum(orders) from marts.store_daily_gmv") == [(2,)]


def test_a_home_given_in_the_run_config_is_the_one_dbt_builds(tmp_path, monkeypatch):
    """The Dagster UI's launchpad can set the warehouse resource's home: every step, dbt's
    included, builds that home, not the one of the environment."""
    import dagster as dg

    landing, home, other = tmp_path / "landing", tmp_path / "home", tmp_path / "env-home"
    write_export(
        landing, "orders", "orders_20211201.csv", [_paid("1000000001", "B1", "2021-11-30 20:00:00")]
    )
    from dagster_project.definitions import defs

    monkeypatch.setenv("TRUSTWH_HOME", str(other))
    config = {"resources": {"warehouse": {"config": {"home": str(home), "landing": str(landing)}}}}
    result = defs.resolve_job_def("trustwh").execute_in_process(
        run_config=config, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    assert result.success
    assert query(home / "serving.duckdb", "select sum(orders) from marts.store_daily_gmv") == [(1,)]
    assert not (other / "warehouse.duckdb").exists()


def test_a_full_refresh_rebuilds_what_incremental_models_kept(tmp_path):
    """An incremental mart keeps the rows of keys no build changes, whatever they hold: a
    row that drifted there (here, written by hand) stays through every incremental build.
    `trustwh run --full-refresh` rebuilds every model from the raw layer, though nothing new
    landed, and publishes what one run over the exports builds."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    basis = _one_order_built(landing, home)
    built = basis.read_text()
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        con.execute(
            "insert into marts.store_daily_gmv by name "
            "select * replace ('S_DRIFT' as store_id) from marts.store_daily_gmv"
        )
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0 and "No run started" in " ".join(output.split()), output

    code, output = trustwh("run", "--landing", landing, "--home", home, "--full-refresh")
    assert code == 0, output
    for database in ("warehouse.duckdb", "serving.duckdb"):
        stores = query(home / database, "select store_id from marts.store_daily_gmv")
        assert stores == [(_paid("1000000001", "B1", "2021-11-05 20:00:00")["store_id"],)]
    assert basis.read_text() == built  # the next build goes on incrementally


def test_a_file_landed_again_corrected_wins_in_every_kind_of_build(tmp_path):
    """A file landed again under its name with new bytes is a second published load. With
    the same `updated_at`, export date and file name, the later load wins, though its row
    comes earlier in the file: in the build that reads it as new, and in a full refresh that
    ranks both loads at once."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    paid = _paid("1000000001", "B1", "2021-11-05 20:00:00")
    write_export(landing, "orders", "orders_20211201.csv", [order("1000000002"), paid])
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    corrected = paid | {"paid_amount": "99.00"}
    write_export(landing, "orders", "orders_20211201.csv", [corrected, order("1000000002")])
    for flags in ([], ["--full-refresh"]):
        code, output = trustwh("run", "--landing", landing, "--home", home, *flags)
        assert code == 0, output
        gmv = query(
            home / "serving.duckdb",
            "select sum(gmv) from marts.store_daily_gmv where purchase_date = '2021-11-05'",
        )
        assert gmv == [(Decimal("99.00"),)], flags


def test_a_missing_landing_folder_is_a_message_not_a_traceback(tmp_path):
    code, output = trustwh("run", "--landing", tmp_path / "nowhere", "--home", tmp_path / "home")
    assert code == 2
    # Rich wraps the message at the console's width, wherever the path ends.
    assert "does not exist" in " ".join(output.split()) and "Traceback" not in output


def test_the_sample_has_the_shape_of_the_article(dirty):
    root, _, _, _ = dirty
    serving = root / "home" / "serving.duckdb"
    [(tea_sessions,)] = query(
        serving,
        "select avg(session_repurchase_rate) from marts.live_session_performance "
        "where store_id = 'S001' and session_date >= (select max(session_date) - 60 "
        "from marts.live_session_performance)",
    )
    assert tea_sessions > 0.75  # 露露: single-session repurchase 93.8%
    [(violations,)] = query(
        serving, "select counted_violations from marts.store_compliance where store_id = 'S004'"
    )
    assert violations == 0  # 鑫鑫: zero violations since the first stream
    coverage = query(serving, "select trust_card_coverage from marts.platform_monthly_repurchase")
    assert all(0.9 < value <= 1.0 for (value,) in coverage)  # trust card covers >97%


@pytest.mark.parametrize(
    ("selected", "said"),
    [
        ("serving", "nothing has been loaded into this home yet"),
        ("marts", "nothing has been loaded into this home yet"),
        ("quality/report", "nothing is published in"),
    ],
)
def test_a_selection_on_a_new_home_fails_saying_what_to_run_first(
    tmp_path, monkeypatch, selected, said
):
    """The publish, the marts or the report materialized alone in the Dagster UI before any
    run: a sentence, not DuckDB's missing-table error."""
    import dagster as dg

    from dagster_project.definitions import defs
    from dagster_project.errors import error_line

    monkeypatch.setenv("TRUSTWH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TRUSTWH_LANDING", str(tmp_path / "landing"))
    selection = [
        key for key in defs.resolve_all_asset_keys() if "/".join(key.path).startswith(selected)
    ]
    result = defs.resolve_job_def("trustwh").execute_in_process(
        asset_selection=selection, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert error_line(failure.event_specific_data.error).startswith(said)
