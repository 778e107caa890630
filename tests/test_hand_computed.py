"""Hand-computed answers through the whole job: export files in, repurchase marts out.

Store S001, three buyers, and re-exports that must resolve by the contract's tie-breaks:
- B1 buys on Aug 5 and Aug 20 (repeat in August), and in live session L9 on Oct 3 at 20:05.
- B2 buys on Sep 10, and in L9 at 20:10.
- B3 buys in L9 at exactly 20:00, the session's first payment.
- Order 7 (B4, Sep 15) is re-exported later as closed: not a purchase.
- Order 8 (B5, Sep 16) appears with the same updated_at in files `_a` (paid) and `_b`
  (closed): the later file name wins, so it is closed.
(Two versions of a key within one file are a load the gate blocks — keys are unique within a
load — so the last tie-break, the later row, is proven by the dbt unit tests instead.)
"""

from __future__ import annotations

from datetime import date

import pytest

from .exports import order, write_export
from .runs import query, trustwh

pytestmark = pytest.mark.slow


def paid(order_id: str, buyer: str, at: str, **fields: str) -> dict[str, str]:
    return order(order_id, buyer_id=buyer, created_at=at, paid_at=at, updated_at=at, **fields)


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    root = tmp_path_factory.mktemp("hand")
    landing = root / "landing"
    write_export(
        landing,
        "orders",
        "orders_20210901.csv",
        [
            paid("1000000001", "B1", "2021-08-05 20:00:00", live_session_id="L1"),
            paid("1000000002", "B1", "2021-08-20 20:00:00", live_session_id="L2"),
        ],
        language="zh",
        encoding="gb18030",
    )
    write_export(
        landing,
        "orders",
        "orders_20211001.csv",
        [
            paid("1000000004", "B2", "2021-09-10 20:00:00", live_session_id="L3"),
            paid("1000000007", "B4", "2021-09-15 20:00:00", live_session_id="L3"),
        ],
    )
    write_export(
        landing,
        "orders",
        "orders_20211001_a.csv",
        [
            paid("1000000008", "B5", "2021-09-16 20:00:00"),
        ],
        encoding="utf-8-sig",
    )
    write_export(
        landing,
        "orders",
        "orders_20211001_b.csv",
        [
            paid("1000000008", "B5", "2021-09-16 20:00:00", order_status="已关闭"),
        ],
    )
    write_export(
        landing,
        "orders",
        "orders_20211101.csv",
        [
            paid("1000000003", "B1", "2021-10-03 20:05:00", live_session_id="L9"),
            paid("1000000005", "B3", "2021-10-03 20:00:00", live_session_id="L9"),
            paid("1000000006", "B2", "2021-10-03 20:10:00", live_session_id="L9"),
            order(
                "1000000007",
                buyer_id="B4",
                paid_at="2021-09-15 20:00:00",
                created_at="2021-09-15 20:00:00",
                updated_at="2021-09-20 09:00:00",
                order_status="已关闭",
            ),
        ],
        language="zh",
    )
    code, output = trustwh("run", "--landing", landing, "--home", root / "home")
    assert code == 0, output
    return root / "home" / "serving.duckdb"


def test_store_monthly_repurchase(serving):
    rows = query(
        serving,
        "select month, buyers, orders, gmv, repeat_buyers, repeat_purchase_rate, "
        "returning_buyers, returning_buyer_rate from marts.store_monthly_repurchase "
        "where store_id = 'S001' order by month",
    )
    assert rows == [
        (date(2021, 8, 1), 1, 2, 200, 1, 1.0, 0, 0.0),
        (date(2021, 9, 1), 1, 1, 100, 0, 0.0, 0, 0.0),
        (date(2021, 10, 1), 3, 3, 300, 0, 0.0, 2, pytest.approx(2 / 3)),
    ]


def test_platform_cohort_retention_has_zero_activity_months(serving):
    rows = query(
        serving,
        "select cohort_month, month_offset, cohort_buyers, active_buyers, retention_rate "
        "from marts.platform_cohort_retention order by cohort_month, month_offset",
    )
    assert rows == [
        (date(2021, 8, 1), 0, 1, 1, 1.0),
        (date(2021, 8, 1), 1, 1, 0, 0.0),
        (date(2021, 8, 1), 2, 1, 1, 1.0),
        (date(2021, 9, 1), 0, 1, 1, 1.0),
        (date(2021, 9, 1), 1, 1, 1, 1.0),
        (date(2021, 10, 1), 0, 1, 1, 1.0),
    ]


def test_session_repurchase_counts_purchases_strictly_before_the_session(serving):
    [row] = query(
        serving,
        "select store_id, session_date, orders, buyers, returning_buyers, "
        "session_repurchase_rate from marts.live_session_performance "
        "where live_session_id = 'L9'",
    )
    assert row == ("S001", date(2021, 10, 3), 3, 3, 2, pytest.approx(2 / 3))


def test_re_exports_resolve_by_updated_at_then_file_name(serving):
    closed = query(
        serving,
        "select count(*) from marts.store_daily_gmv "
        "where store_id = 'S001' and purchase_date in ('2021-09-15', '2021-09-16')",
    )
    assert closed == [(0,)]
