"""One more day of exports, crafted from what a landing already holds.

The generator writes whole months, so a later `--end-month` would rewrite history rather
than add a day. The day is therefore derived from the rows already loaded (`raw.*` of the
warehouse after the full build, read-only), for the day after the latest export date E:

- orders (about `share` of the distinct orders): 70% new orders created on E, cloned from
  E's export with fresh order ids and their times moved to E (returning buyers included);
  a live order goes into its store's session of E, as the generator holds at most one
  session a store a day and none runs past midnight (a clone kept its template's session,
  months earlier, and a day then changed every session of history);
  25% re-exports of earlier orders whose current status moves on (paid → shipped,
  shipped → completed) with `updated_at` on E; 5% unchanged re-exports (same `updated_at`:
  the later export date must win the tie);
- refunds (about `share` of the refunds): new requests on the day's new paid orders, and
  pending requests approved on E;
- violations: `share` new records detected on E. Fans come as monthly snapshots: none.

Every file is UTF-8 with English headers, one per store, named `<entity>_<E+1>_<store>_
benchday.csv`, so the run reads it as one more export of the platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb

from ..defs.ingest.contract import BOOLEAN, DATE, ENTITIES, TIMESTAMP
from ..defs.ingest.parsing import quote

SUFFIX = "benchday"


@dataclass
class Day:
    export_date: date
    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    detail: dict[str, int] = field(default_factory=dict)


CURRENT = """
    select * from w.raw.{entity}
    qualify row_number() over (
        partition by {key}
        order by updated_at desc, _export_date desc, _file_name desc, _row_number desc
    ) = 1
"""


def _rank(salt: str, key: str) -> str:
    return f"row_number() over (order by hash({key}, '{salt}'), {key})"


def craft_day(warehouse: Path, out: Path, share: float = 0.01, temp_dir: Path | None = None) -> Day:
    """Write the day's files into `out` (entity folders); return what was written."""
    config = {"memory_limit": "2GB", "threads": 2}
    if temp_dir is not None:
        config["temp_directory"] = str(temp_dir)
    con = duckdb.connect(config=config)
    try:
        con.execute(f"attach {quote(str(warehouse))} as w (read_only)")
        last = con.execute("select max(_export_date) from w.raw.orders").fetchone()[0]
        day = Day(export_date=last + timedelta(days=1))
        # on_day: the same time of day on E (a status moving on); before_export: a time moved
        # onto E that ran past midnight stays on E.
        con.execute(f"create macro on_day(t) as date '{last}' + (t - cast(t as date))")
        con.execute(
            f"create macro before_export(t) as "
            f"least(t, date '{day.export_date}' - interval 1 second)"
        )
        con.execute(
            f"create macro new_id(prefix, n, width) as prefix || strftime(date '{last}', "
            "'%y%m%d') || '9' || lpad(cast(n as varchar), width, '0')"
        )
        # A store's session on E, in the generator's form: 7, the date, the store's two
        # digits, ten more; the template's session id gives the store.
        con.execute(
            "create macro day_session(session) as case when nullif(session, '') is not null "
            f"then '7' || strftime(date '{last}', '%y%m%d') || substr(session, 8, 2) || "
            f"lpad(cast(hash(substr(session, 8, 2), date '{last}') % 10000000000 as varchar), "
            "10, '0') else session end"
        )
        _orders(con, last, share, day)
        _refunds(con, last, share, day)
        _violations(con, last, share, day)
        for entity in ("orders", "refunds", "violations"):
            day.rows[entity] = con.execute(f"select count(*) from day_{entity}").fetchone()[0]
            day.files += _write(con, entity, out, day.export_date)
    finally:
        con.close()
    return day


def _orders(con: duckdb.DuckDBPyConnection, last: date, share: float, day: Day) -> None:
    orders = con.execute("select count(distinct order_id) from w.raw.orders").fetchone()[0]
    new, moved, same = (max(1, round(orders * share * part)) for part in (0.70, 0.25, 0.05))
    current = CURRENT.format(entity="orders", key="order_id")
    con.execute(f"create temp table current_orders as {current}")
    con.execute(
        f"""
        create temp table new_orders as
        with templates as (
            select *, {_rank("new", "order_id")} as n
            from w.raw.orders where _export_date = date '{last}'
        ),
        shifted as (
            select
                * replace (new_id('4', n, 11) as order_id),
                to_days(date '{last}' - cast(created_at as date)) as shift
            from templates where n <= {new}
        )
        select * replace (
            day_session(live_session_id) as live_session_id,
            created_at + shift as created_at,
            before_export(paid_at + shift) as paid_at,
            before_export(updated_at + shift) as updated_at
        )
        from shifted
        """
    )
    con.execute(
        f"""
        create temp table day_orders as
        select * exclude (n, shift) from new_orders
        union all by name
        select * exclude (n) replace (
            case order_status when '已付款' then '已发货' else '已完成' end as order_status,
            on_day(updated_at) as updated_at
        )
        from (
            select *, {_rank("moved", "order_id")} as n from current_orders
            where order_status in ('已付款', '已发货')
        )
        where n <= {moved}
        union all by name
        select * exclude (n) from (
            select *, {_rank("same", "order_id")} as n from current_orders
        )
        where n <= {same}
        """
    )
    day.detail.update(
        orders_new=new, orders_moved_on=moved, orders_unchanged=same, orders_before=orders
    )


def _refunds(con: duckdb.DuckDBPyConnection, last: date, share: float, day: Day) -> None:
    refunds = con.execute("select count(distinct refund_id) from w.raw.refunds").fetchone()[0]
    new, moved = (max(1, round(refunds * share * part)) for part in (0.8, 0.2))
    latest = con.execute("select max(_export_date) from w.raw.refunds").fetchone()[0]
    con.execute(
        f"""
        create temp table day_refunds as
        with templates as (
            select *, row_number() over (partition by store_id order by hash(refund_id, 'new'),
                refund_id) as k
            from w.raw.refunds where _export_date = date '{latest}'
        ),
        paid as (
            select *, row_number() over (partition by store_id order by order_id) as k
            from new_orders where paid_at is not null and order_status != '已关闭'
        ),
        paired as (
            select
                templates.* replace (
                    paid.order_id as order_id,
                    paid.buyer_id as buyer_id,
                    coalesce(least(templates.refund_amount, paid.paid_amount),
                        templates.refund_amount) as refund_amount,
                    '待处理' as refund_status,
                    before_export(paid.paid_at + interval 1 hour) as requested_at,
                    null as resolved_at,
                    before_export(paid.paid_at + interval 1 hour) as updated_at
                ),
                row_number() over (order by templates.refund_id) as n
            from templates inner join paid
                on templates.store_id = paid.store_id and templates.k = paid.k
        )
        select * exclude (k, n) replace (new_id('6', n, 11) as refund_id)
        from paired where n <= {new}
        union all by name
        select * exclude (n) replace (
            '已同意' as refund_status,
            on_day(updated_at) as resolved_at,
            on_day(updated_at) as updated_at
        )
        from (
            select *, {_rank("moved", "refund_id")} as n
            from ({CURRENT.format(entity="refunds", key="refund_id")})
            where refund_status = '待处理'
        )
        where n <= {moved}
        """
    )
    day.detail.update(refunds_before=refunds)


def _violations(con: duckdb.DuckDBPyConnection, last: date, share: float, day: Day) -> None:
    violations = con.execute("select count(*) from w.raw.violations").fetchone()[0]
    new = max(1, round(violations * share))
    latest = con.execute("select max(_export_date) from w.raw.violations").fetchone()[0]
    con.execute(
        f"""
        create temp table day_violations as
        select * exclude (n) replace (
            'WG' || strftime(date '{last}', '%Y%m%d') || '9' || lpad(cast(n as varchar), 6, '0')
                as violation_id,
            on_day(detected_at) as detected_at,
            on_day(detected_at) as updated_at
        )
        from (
            select *, {_rank("new", "violation_id")} as n
            from w.raw.violations where _export_date = date '{latest}'
        )
        where n <= {new}
        """
    )


def _formatted(entity: str) -> str:
    columns = []
    for column in ENTITIES[entity].columns:
        name = column.name
        if column.kind == TIMESTAMP:
            value = f"strftime({name}, '%Y-%m-%d %H:%M:%S')"
        elif column.kind == DATE:
            value = f"strftime({name}, '%Y-%m-%d')"
        elif column.kind == BOOLEAN:
            value = f"case when {name} then '是' when not {name} then '否' end"
        else:
            value = f"cast({name} as varchar)"
        columns.append(f'{value} as "{name}"')
    return ", ".join(columns)


def _write(con: duckdb.DuckDBPyConnection, entity: str, out: Path, export: date) -> list[Path]:
    """One file per store (violations: one file), as the platform exports them."""
    folder = out / entity
    folder.mkdir(parents=True, exist_ok=True)
    if entity == "violations":
        parts = {f"{entity}_{export:%Y%m%d}_{SUFFIX}.csv": "true"}
    else:
        stores = con.execute(f"select distinct store_id from day_{entity} order by 1").fetchall()
        parts = {
            f"{entity}_{export:%Y%m%d}_{store}_{SUFFIX}.csv": f"store_id = '{store}'"
            for (store,) in stores
        }
    written = []
    for name, where in parts.items():
        target = folder / name
        con.execute(
            f"copy (select {_formatted(entity)} from day_{entity} where {where} "
            f"order by all) to '{target}' (header, delimiter ',')"
        )
        written.append(target)
    return written
