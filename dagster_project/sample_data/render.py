"""Writing the sample world as export files, varied the way real back-office exports vary.

Each file gets a `Style` (header language, column order, encoding, line ends, time, money and
boolean formats, an unknown extra column). Styles are dealt per entity from a seeded shuffle
so that every variant occurs at any scale. DuckDB's COPY writes each file; files that need
a BOM or GB18030 are re-encoded by streaming, never read whole into memory.
"""

from __future__ import annotations

import codecs
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.defs.ingest.contract import (
    BOOLEAN,
    DATE,
    ENTITIES,
    INTEGER,
    MONEY,
    TIMESTAMP,
    Entity,
)

from . import build
from .build import Plan, epoch, q

TIME_FORMATS = {
    "standard": "%Y-%m-%d %H:%M:%S",
    "slashes": "%Y/%m/%d %H:%M:%S",
    "no_seconds": "%Y-%m-%d %H:%M",
}
DATE_FORMATS = {"standard": "%Y-%m-%d", "compact": "%Y%m%d"}
BOOL_LABELS = {"zh": ("是", "否"), "word": ("true", "false"), "digit": ("1", "0"), "yn": ("Y", "N")}
EXTRA_COLUMN = {"zh": "备注", "en": "remark"}
EXTRA_VALUES = ("加急", "赠品: 茶样, 2包", '客户要求"周末送达"', "已电话确认")
CHUNK = 1 << 22


@dataclass(frozen=True)
class Style:
    language: str = "en"  # en | zh
    encoding: str = "utf-8"  # utf-8 | utf-8-sig | gb18030
    crlf: bool = False
    column_order: tuple[str, ...] = ()  # empty: the contract's order
    extra_column: bool = False
    padded_header: bool = False  # header names with surrounding spaces
    time_format: str = "standard"
    date_format: str = "standard"
    money_format: str = "plain"  # plain | yuan (¥ and thousands separators)
    bool_labels: str = "zh"
    mask_phone: bool = False


@dataclass(frozen=True)
class ExportFile:
    entity: str
    name: str
    where: str  # which rows of the entity's base table
    at: int  # export time (epoch seconds): the state the export shows
    reexport: bool = False  # orders: the final state of orders exported a month before
    # Rows come in table order (the tables are stored sorted as exports list them).
    order_by: str = ""


def deal_styles(entity: Entity, names: list[str], seed: int) -> dict[str, Style]:
    """Styles for an entity's files: each variant on a share of them, at least one each."""
    rng = random.Random(f"{seed}/{entity.name}/styles")
    n = len(names)
    styles: dict[str, dict[str, Any]] = {name: {} for name in names}

    def deal(field: str, variants: dict[Any, float], pool: list[str] | None = None) -> None:
        remaining = list(pool if pool is not None else names)
        rng.shuffle(remaining)
        for value, share in variants.items():
            count = min(len(remaining), max(1, round(share * n)))
            for name in remaining[:count]:
                styles[name][field] = value
            remaining = remaining[count:]

    deal("encoding", {"gb18030": 0.15, "utf-8-sig": 0.15})
    # Older Chinese office tools (GB18030) print Chinese headers; the rest split evenly.
    gb = [name for name in names if styles[name].get("encoding") == "gb18030"]
    others = [name for name in names if name not in gb]
    zh_share = max(0.0, (n / 2 - len(gb)) / n)
    deal("language", {"zh": zh_share}, others)
    deal("crlf", {True: 0.2})
    deal("extra_column", {True: 0.05})
    deal("padded_header", {True: 0.04})
    deal("time_format", {"slashes": 0.1, "no_seconds": 0.1})
    deal("date_format", {"compact": 0.2})
    deal("money_format", {"yuan": 0.15})
    deal("bool_labels", {"word": 0.1, "digit": 0.1, "yn": 0.1})
    deal("mask_phone", {True: 0.5})
    shuffled = list(names)
    rng.shuffle(shuffled)
    for name in shuffled[: max(1, round(0.25 * n))]:
        order = list(entity.column_names)
        rng.shuffle(order)
        styles[name]["column_order"] = tuple(order)
    for name in gb:
        styles[name]["language"] = "zh"
    return {name: Style(**fields) for name, fields in styles.items()}


def _money(expr: str, style: Style) -> str:
    if style.money_format == "yuan":
        return f"'¥' || format('{{:,.2f}}', {expr})"
    return f"({expr})::varchar"  # decimal(18,2) prints both decimals, faster than printf


def _formatted(kind: str, expr: str, style: Style) -> str:
    """The text a file shows for a typed value; NULL stays NULL (an empty field)."""
    if kind == TIMESTAMP:
        if style.time_format == "standard":
            return f"ts({expr})::varchar"  # whole seconds print as %Y-%m-%d %H:%M:%S
        return f"strftime(ts({expr}), {q(TIME_FORMATS[style.time_format])})"
    if kind == DATE:
        return f"strftime({expr}, {q(DATE_FORMATS[style.date_format])})"
    if kind == MONEY:
        return _money(expr, style)
    if kind == BOOLEAN:
        yes, no = BOOL_LABELS[style.bool_labels]
        return f"case when {expr} then {q(yes)} when not {expr} then {q(no)} end"
    if kind == INTEGER:
        return f"({expr})::varchar"
    return expr


def _labels(values: tuple[str, ...], code: str) -> str:
    return f"{q(list(values))}[{code}]"


def create_lookups(con: duckdb.DuckDBPyConnection, seed: int) -> None:
    """Macros the file queries share."""
    # A bijection of the key onto 12-digit ids: buyers and fans share one id space, and no id
    # looks like an 11-digit mobile number.
    con.execute(
        "create macro user_id(key) as "
        "(((key) * 2654435761 + 97531) % 17179869184 + 200000000000)::varchar"
    )
    con.execute(
        f"create macro extra_note(key) as {q(list(EXTRA_VALUES))}"
        f"[(1 + hash(key, {seed}, 92) % {len(EXTRA_VALUES)})::bigint]"
    )


def _orders_sql(export: ExportFile, style: Style) -> tuple[str, dict[str, str]]:
    version = "final" if export.reexport else "first"
    phone = "phone"
    if style.mask_phone:
        phone = "concat(left(phone, 3), '****', right(phone, 4))"
    base = f"select *, i as row_key from orders as o where {export.where}"
    values = {
        "order_id": "order_id",
        "store_id": "store_id",
        "store_name": "store_name",
        "anchor_id": "anchor_id",
        "buyer_id": "user_id(buyer_key)",
        "receiver_phone": phone,
        "receiver_address": "address",
        "item_id": "item_id",
        "item_name": "item_name",
        "category": "category",
        "quantity": "quantity",
        "unit_price": "unit_price",
        "paid_amount": "paid_amount",
        "order_status": _labels(build.ORDER_STATUS, f"status_{version}"),
        "channel": _labels(build.CHANNEL, "chan"),
        "live_session_id": "session_id",
        "trust_card": "trust_card",
        "fan_club_level": "fan_club_level",
        "created_at": "created_at",
        "paid_at": "paid_at" if export.reexport else "paid_first",
        "updated_at": f"updated_{version}",
    }
    return base, values


def _refunds_sql(export: ExportFile, style: Style) -> tuple[str, dict[str, str]]:
    base = f"select *, i as row_key from refund_rows as r where {export.where}"
    values = {
        "refund_id": "refund_id",
        "order_id": "order_id",
        "store_id": "store_id",
        "buyer_id": "user_id(buyer_key)",
        "refund_type": _labels(build.REFUND_TYPE, "refund_type"),
        "reason": "reason",
        "refund_amount": "refund_amount",
        "shipping_subsidy": "shipping_subsidy",
        "refund_status": _labels(build.REFUND_STATUS, "refund_status"),
        "requested_at": "requested_at",
        "resolved_at": "resolved_at",
        "updated_at": "updated_at",
    }
    return base, values


def _fans_sql(export: ExportFile, style: Style) -> tuple[str, dict[str, str]]:
    at = export.at
    base = f"""
        select
            *,
            unfollowed_at is null or unfollowed_at >= {at} as following,
            fan_key as row_key
        from fan as f
        where {export.where}
    """
    joined = f"following and joined_at < {at}"
    values = {
        "snapshot_date": f"ts({at})::date",
        "store_id": "store_id",
        "fan_id": "user_id(fan_key)",
        "followed_at": "followed_at",
        "is_following": "following",
        # Unfollowing leaves the fan club.
        "fan_club_level": f"case when {joined} then "
        + build.club_level_sql(str(at), "joined_at", "loyalty", "club_rate")
        + " else 0 end",
        "fan_club_joined_at": f"case when {joined} then joined_at end",
    }
    return base, values


def _violations_sql(export: ExportFile, style: Style) -> tuple[str, dict[str, str]]:
    base = f"select *, v as row_key from violation_rows as v where {export.where}"
    values = {
        "violation_id": "violation_id",
        "store_id": "store_id",
        "anchor_id": "anchor_id",
        "live_session_id": "live_session_id",
        "violation_type": _labels(build.VIOLATION_TYPE, "violation_type"),
        "source": _labels(build.SOURCE, "source"),
        "severity": _labels(build.SEVERITY, "severity"),
        "penalty_points": "penalty_points",
        "penalty_amount": "penalty_amount",
        "violation_status": _labels(build.VIOLATION_STATUS, "violation_status"),
        "detected_at": "detected_at",
        "updated_at": "updated_at",
    }
    return base, values


SOURCES: dict[str, Callable[[ExportFile, Style], tuple[str, dict[str, str]]]] = {
    "orders": _orders_sql,
    "refunds": _refunds_sql,
    "fans": _fans_sql,
    "violations": _violations_sql,
}


def header_name(entity: Entity, column: str, style: Style) -> str:
    spec = entity.column(column)
    name = spec.zh if style.language == "zh" else spec.name
    return f" {name} " if style.padded_header else name


def select_sql(export: ExportFile, style: Style, limit: int | None = None) -> str:
    """The query whose result is the file: formatted text columns named as its header."""
    entity = ENTITIES[export.entity]
    base, values = SOURCES[export.entity](export, style)
    columns = []
    for column in style.column_order or tuple(entity.column_names):
        kind = entity.column(column).kind
        alias = header_name(entity, column, style).replace('"', '""')
        columns.append(f'{_formatted(kind, values[column], style)} as "{alias}"')
    if style.extra_column:
        columns.append(
            "case when rnd(row_key, 93) < 0.1 then extra_note(row_key) end"
            f' as "{EXTRA_COLUMN[style.language]}"'
        )
    sql = f"with base as ({base}) select {', '.join(columns)} from base"
    if export.order_by:
        sql += f" order by {export.order_by}"
    return sql + (f" limit {limit}" if limit is not None else "")


def write_file(
    con: duckdb.DuckDBPyConnection,
    export: ExportFile,
    style: Style,
    staging: Path,
    target: Path,
) -> int:
    """Write one export; returns its data rows. An export without rows is not written."""
    staging.parent.mkdir(parents=True, exist_ok=True)
    newline = "\\r\\n" if style.crlf else "\\n"
    rows = con.execute(
        f"copy ({select_sql(export, style)}) to {q(str(staging))} "
        f"(header, delimiter ',', quote '\"', new_line e'{newline}')"
    ).fetchone()
    count = int(rows[0]) if rows else 0
    if count == 0:
        staging.unlink(missing_ok=True)
        return 0
    if style.encoding == "utf-8":
        os.replace(staging, target)
    else:
        reencode(staging, target, style.encoding)
        staging.unlink()
    return count


def reencode(source: Path, target: Path, encoding: str) -> None:
    """Stream a UTF-8 file into `encoding` (utf-8-sig adds the BOM), chunk by chunk."""
    partial = target.with_name(f".{target.name}.part")
    with source.open("rb") as reader, partial.open("wb") as writer:
        if encoding == "utf-8-sig":
            writer.write(codecs.BOM_UTF8)
            while chunk := reader.read(CHUNK):
                writer.write(chunk)
        else:
            decoder = codecs.getincrementaldecoder("utf-8")()
            while chunk := reader.read(CHUNK):
                writer.write(decoder.decode(chunk).encode(encoding))
            writer.write(decoder.decode(b"", final=True).encode(encoding))
    os.replace(partial, target)


def plan_exports(plan: Plan) -> list[ExportFile]:
    """Every clean export of the window, in writing order."""
    exports: list[ExportFile] = []
    stamps = [epoch(day) for day in plan.exports]
    label = [day.strftime("%Y%m%d") for day in plan.exports]
    last = len(plan.months) - 1
    for st in plan.stores:
        for k in range(len(plan.months)):
            where = f"o.s = {st.num} and o.k = {k}"
            exports.append(
                ExportFile(
                    "orders",
                    f"orders_{label[k]}_{st.store_id}.csv",
                    f"{where} and not o.late",
                    stamps[k],
                )
            )
            if k < last:
                # Orders that moved on since their export, late arrivals and a few repeats.
                exports.append(
                    ExportFile(
                        "orders",
                        f"orders_{label[k + 1]}_{st.store_id}_reexport.csv",
                        f"{where} and (o.late or o.repeat_unchanged"
                        " or o.status_first <> o.status_final)",
                        stamps[k + 1],
                        reexport=True,
                    )
                )
    for st in plan.stores:
        for e in range(len(plan.months)):
            exports.append(
                ExportFile(
                    "refunds",
                    f"refunds_{label[e]}_{st.store_id}.csv",
                    f"r.s = {st.num} and r.e = {e}",
                    stamps[e],
                )
            )
    for st in plan.stores:
        for k in range(len(plan.months)):
            previous = stamps[k - 1] if k else epoch(plan.months[0])
            exports.append(
                ExportFile(
                    "fans",
                    f"fans_{label[k]}_{st.store_id}.csv",
                    f"f.s = {st.num} and f.followed_at < {stamps[k]}"
                    f" and (f.unfollowed_at is null or f.unfollowed_at >= {previous})",
                    stamps[k],
                )
            )
    for e in range(len(plan.months)):
        exports.append(
            ExportFile(
                "violations",
                f"violations_{label[e]}.csv",
                f"v.e = {e}",
                stamps[e],
            )
        )
    return exports
