"""Refunds (售后): what every new refunds load is checked for."""

from __future__ import annotations

from dagster_project.defs.ingest.contract import REFUNDS

from .common import PUBLISHED_LOADS, WARN, Suite, row_count_check, sql_check, standard_checks

# The current version of each order the batch refunds, among published loads (METRICS.md).
CURRENT_ORDERS = f"""
select order_id, paid_amount from raw.orders
where _load_id in ({PUBLISHED_LOADS})
    and order_id in (select order_id from {{batch}} as refunded)
qualify row_number() over (
    partition by order_id
    order by updated_at desc, _export_date desc, _file_name desc, _row_number desc
) = 1
""".strip()

SUITE = Suite(
    REFUNDS,
    (
        *standard_checks(REFUNDS),
        row_count_check(REFUNDS),
        sql_check(
            "refund_within_order_amount",
            WARN,
            "A refund is not larger than what the buyer paid for the order (current version "
            "of the order among published loads).",
            f"""
with current_orders as (
{CURRENT_ORDERS}
)
select
    refunds._load_id,
    concat('row ', refunds._row_number, ': refund ', refunds.refund_id, ' of ',
        refunds.refund_amount, ' > ', current_orders.paid_amount, ' paid for order ',
        refunds.order_id) as _detail
from {{batch}} as refunds
inner join current_orders on refunds.order_id = current_orders.order_id
where refunds.refund_amount > current_orders.paid_amount
""".strip(),
        ),
        sql_check(
            "refund_order_known",
            WARN,
            "The refunded order is in a published orders load (refunds may arrive before their "
            "order: an orphan is reported, not blocked).",
            f"""
select
    refunds._load_id,
    concat('row ', refunds._row_number, ': refund ', refunds.refund_id, ' of unknown order ',
        refunds.order_id) as _detail
from {{batch}} as refunds
left join (
    select distinct order_id from raw.orders
    where _load_id in ({PUBLISHED_LOADS})
        and order_id in (select order_id from {{batch}} as refunded)
) as known on refunds.order_id = known.order_id
where known.order_id is null
""".strip(),
        ),
    ),
)
