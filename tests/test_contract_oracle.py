"""Every mart of a small generated landing, then of an export day that re-exports earlier keys
with later versions (the marts built incrementally by key), equals an independent oracle of
the mart contract (`contract_oracle.py`: plain Python from METRICS.md and EXPORTS.md, none of
the project's SQL or ingest code), row by row and column by column (money to the cent,
rates to 1e-9); and the load ledger counts every data row."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from dagster_project.sample_data.generate import generate

from .contract_oracle import COUNTED_REFUND, KEYS, VALID, check, current, read_landing
from .exports import write_export
from .runs import trustwh

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


def _raw(record: dict) -> dict:
    return {name: value.strip(" ") for name, value in record["_raw"].items()}


def _later_day(landing: Path, rnd: random.Random) -> None:
    """Export files of 2021-12-02/03 re-exporting earlier keys with later versions: orders
    closed, completed, paid earlier, moved to another buyer or session; a stale version; new
    counted refunds on old orders and earlier refunds withdrawn; violations overturned; a new
    fans snapshot where fans of the gift list unfollow or are gone."""
    _, records = read_landing(landing)
    orders = current(records["orders"], ("order_id",))
    valid = sorted(
        (o for o in orders.values() if o["paid_at"] is not None and o["order_status"] in VALID),
        key=lambda o: o["order_id"],
    )
    rnd.shuffle(valid)
    at = iter(f"2021-12-02 0{h}:{m:02d}:00" for h in range(10) for m in range(60))
    rows, stale = [], []
    for n, o in enumerate(valid[:60]):
        row = _raw(o) | {"updated_at": next(at)}
        kind = n % 6
        if kind == 0:
            row["order_status"] = "已关闭"
        elif kind == 1:
            row["order_status"] = "已完成"
        elif kind == 2:
            earlier = o["paid_at"] - timedelta(days=33)
            row["paid_at"] = earlier.strftime("%Y-%m-%d %H:%M:%S")
            row["created_at"] = row["paid_at"]
        elif kind == 3:
            row["buyer_id"] = valid[n + 100]["buyer_id"]
        elif kind == 4:
            row["live_session_id"] = valid[n + 200]["live_session_id"] or ""
        else:
            stale.append(
                _raw(o)
                | {
                    "order_status": "已关闭",
                    "updated_at": (o["updated_at"] - timedelta(seconds=1)).strftime(
                        "%Y-%m-%d %H:%M:%S"
                    ),
                }
            )
            continue
        rows.append(row)
    write_export(
        landing, "orders", "orders_20211202_again.csv", rows, language="zh", encoding="gb18030"
    )
    write_export(landing, "orders", "orders_20211202_stale.csv", stale, encoding="utf-8-sig")

    refunds = current(records["refunds"], ("refund_id",))
    counted = sorted(
        (r for r in refunds.values() if r["refund_status"] in COUNTED_REFUND),
        key=lambda r: r["refund_id"],
    )
    new = [
        {
            "refund_id": f"RX{n}",
            "order_id": o["order_id"],
            "store_id": o["store_id"],
            "buyer_id": o["buyer_id"],
            "refund_type": ["仅退款", "退货退款", "退款不退货", "换货"][n % 4],
            "reason": "质量问题",
            "refund_amount": f"{min(o['paid_amount'] or 0, 300):.2f}",
            "shipping_subsidy": "6.00",
            "refund_status": ["已同意", "已完成", "待处理"][n % 3],
            "requested_at": (o["paid_at"] + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
            "resolved_at": (o["paid_at"] + timedelta(days=1, hours=5 + n)).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
            "updated_at": "2021-12-03 08:00:00",
        }
        for n, o in enumerate(valid[300:330])
    ]
    withdrawn = [
        _raw(r) | {"refund_status": "已撤销", "updated_at": "2021-12-03 09:00:00"}
        for r in counted[:8]
    ]
    write_export(landing, "refunds", "refunds_20211203.csv", new + withdrawn)

    violations = current(records["violations"], ("violation_id",))
    overturned = [
        _raw(v) | {"violation_status": "申诉成功", "updated_at": "2021-12-03 10:00:00"}
        for v in sorted(violations.values(), key=lambda v: v["detected_at"])[-4:]
    ]
    write_export(landing, "violations", "violations_20211203.csv", overturned, language="zh")

    fans = current(records["fans"], KEYS["fans"], version=None)
    latest = {}
    for store, _, day in fans:
        latest[store] = max(latest.get(store, day), day)
    for store in ("S001", "S002"):
        members = sorted((f, r) for (s, f, d), r in fans.items() if s == store and d == latest[s])
        snapshot = []
        for n, (_, record) in enumerate(members):
            row = _raw(record) | {"snapshot_date": "2021-12-03"}
            if n % 3 == 0:
                row["is_following"] = "否"
            elif n % 3 == 1 and n % 2:
                continue  # gone from the snapshot
            snapshot.append(row)
        write_export(landing, "fans", f"fans_20211203_{store}.csv", snapshot)


def _differences(landing: Path, home: Path) -> tuple[dict, list]:
    _, diffs, ledger = check(landing, home / "serving.duckdb", REPO)
    return diffs, ledger


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """(differences after the first build, after an incremental day)."""
    root = tmp_path_factory.mktemp("oracle")
    landing, home = root / "landing", root / "home"
    generate(landing, seed=3, months=4, scale=0.03)
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    first = _differences(landing, home)
    _later_day(landing, random.Random(3))
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    with duckdb.connect(str(home / "serving.duckdb"), read_only=True) as con:
        held_back = con.execute(
            "select file_name, status from quality.load_ledger where status != 'published'"
        ).fetchall()
    assert held_back == []  # the day's files all reach the marts
    return first, _differences(landing, home)


def test_every_mart_equals_the_oracle_after_a_full_build(builds):
    (diffs, _), _ = builds
    assert diffs == {}


def test_every_mart_equals_the_oracle_after_an_incremental_day(builds):
    _, (diffs, _) = builds
    assert diffs == {}


def test_the_ledger_accounts_for_every_data_row(builds):
    (_, first), (_, second) = builds
    assert first == [] and second == []
