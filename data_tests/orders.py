"""Orders (订单): what every new orders load is checked for."""

from __future__ import annotations

from dagster_project.defs.ingest.contract import CHANNEL, ORDERS

from .common import WARN, Check, Suite, row_count_check, sql_check, sql_text, standard_checks

LIVE = "直播"
assert LIVE in CHANNEL, "the contract's live channel label changed"

SUITE = Suite(
    ORDERS,
    (
        *standard_checks(ORDERS),
        row_count_check(ORDERS),
        Check(
            "paid_at_not_before_created_at",
            WARN,
            "An order is not paid before it was created.",
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {
                "column_A": "paid_at",
                "column_B": "created_at",
                "or_equal": True,
                "ignore_row_if": "either_value_is_missing",
            },
            "select _load_id, concat('row ', _row_number, ': order ', order_id, ' paid ', "
            "paid_at, ' before created ', created_at) as _detail "
            "from {batch} where paid_at < created_at",
        ),
        sql_check(
            "live_orders_have_session",
            WARN,
            f"A live-channel ({LIVE}) order carries its live_session_id.",
            "select _load_id, concat('row ', _row_number, ': order ', order_id, "
            f"' has no live_session_id') as _detail from {{batch}} "
            f"where channel = {sql_text(LIVE)} and live_session_id is null",
        ),
    ),
)
