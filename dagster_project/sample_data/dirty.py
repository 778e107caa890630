"""The bad inputs of EXPORTS.md, one clearly named file each, for loader and gate tests.

Most files are real rows (copies of rows the clean exports already carry, so they change no
mart) plus one broken row, which keeps their loads under the 5% quarantine gate; one file is
broken enough to be blocked, and some cannot be read at all.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import (
    BOOLEAN,
    DATE,
    DIGITS,
    ENTITIES,
    ENUM,
    INTEGER,
    MONEY,
    TIMESTAMP,
)

from .build import Plan, epoch
from .render import ExportFile, Style, select_sql

GATE_THRESHOLD = 0.05  # EXPORTS.md: more than 5% quarantined rows blocks a load
GOOD_ROWS = 30


@dataclass(frozen=True)
class DirtyCase:
    """One bad-input file and what a loader must make of it."""

    name: str
    entity: str
    file: str  # path relative to the output folder
    expect: str  # load ledger status: published, blocked, rejected or duplicate
    data_rows: int | None  # data rows a loader reads from it (None: rejected or skipped)
    bad_rows: int  # rows to set aside in quarantine
    what: str

    def __str__(self) -> str:
        rows = "" if self.data_rows is None else f", {self.bad_rows}/{self.data_rows} rows bad"
        return f"{self.name}: {self.file} -> {self.expect}{rows}: {self.what}"


Row = list[str]


def _fresh_ids(seed: int) -> Callable[[], str]:
    """Order and refund ids no clean export uses (19 digits starting with 5)."""
    counter = iter(range(1, 10**6))
    return lambda: f"5{seed % 1000:03d}{next(counter):015d}"


def _csv_bytes(header: Row | None, rows: list[Row]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


class DirtyWriter:
    def __init__(self, con: duckdb.DuckDBPyConnection, plan: Plan, out: Path) -> None:
        self.con = con
        self.plan = plan
        self.out = out
        self.day = (plan.last_export + timedelta(days=1)).strftime("%Y%m%d")
        self.new_id = _fresh_ids(plan.seed)
        self.cases: dict[str, DirtyCase] = {}

    def real_rows(self, entity: str, style: Style) -> tuple[Row, list[Row]]:
        """Header and up to GOOD_ROWS rows the clean exports already hold, as text."""
        last = len(self.plan.months) - 1
        at = epoch(self.plan.last_export)
        seed = self.plan.seed
        sources = {
            "orders": ExportFile(
                "orders", "", f"o.k = {last} and not o.late", at, order_by=f"hash(i, {seed}, 95)"
            ),
            "refunds": ExportFile(
                "refunds",
                "",
                "r.e = (select max(x.e) from refund_rows as x where x.i = r.i)",
                at,
                order_by=f"hash(i, {seed}, 96)",
            ),
            "fans": ExportFile(
                "fans",
                "",
                f"f.followed_at < {at} and (f.unfollowed_at is null or f.unfollowed_at >= {at})",
                at,
                order_by=f"hash(fan_key, {seed}, 97)",
            ),
            "violations": ExportFile(
                "violations",
                "",
                "v.e = (select max(x.e) from violation_rows as x where x.v = v.v)",
                at,
                order_by=f"hash(v, {seed}, 98)",
            ),
        }
        result = self.con.execute(select_sql(sources[entity], style, limit=GOOD_ROWS))
        header = [column[0] for column in result.description]
        rows = [["" if value is None else str(value) for value in row] for row in result.fetchall()]
        return header, rows

    def template(self, entity: str, header: Row, rows: list[Row]) -> dict[str, str]:
        """A valid row to break: the first real row, or (at a tiny scale) a made-up one."""
        if rows:
            return dict(zip(header, rows[0], strict=True))
        names = {column.zh: column for column in ENTITIES[entity].columns}
        names.update({column.name: column for column in ENTITIES[entity].columns})
        when = f"{self.plan.months[-1]:%Y-%m-%d} 12:00:00"
        values = {
            ENUM: lambda column: column.values[0],
            INTEGER: lambda column: str(column.min_value or 0),
            MONEY: lambda column: "0.00",
            TIMESTAMP: lambda column: when,
            DATE: lambda column: f"{self.plan.last_export:%Y-%m-%d}",
            BOOLEAN: lambda column: "是",
        }
        row = {}
        for name in header:
            column = names[name]
            make = values.get(column.kind)
            if column.kind == DIGITS:
                row[name] = self.new_id()
            elif make is not None:
                row[name] = make(column)
            else:
                row[name] = self.new_id() if column.required else ""
        row[next(n for n in header if names[n].name == "store_id")] = self.plan.stores[0].store_id
        return row

    def write(
        self,
        name: str,
        entity: str,
        content: bytes,
        expect: str,
        data_rows: int | None,
        bad_rows: int,
        what: str,
        key: str | None = None,
    ) -> None:
        path = self.out / entity / f"{entity}_{self.day}_dirty_{name}.csv"
        path.write_bytes(content)
        if expect == "published" and data_rows and bad_rows / data_rows > GATE_THRESHOLD:
            expect = "blocked"  # too few real rows at a tiny scale to dilute the bad ones
        key = key or name
        self.cases[key] = DirtyCase(
            key, entity, f"{entity}/{path.name}", expect, data_rows, bad_rows, what
        )

    def bad_row_file(
        self,
        name: str,
        entity: str,
        style: Style,
        breakers: list[Callable[[dict[str, str]], Row | None]],
        what: str,
        good: int = GOOD_ROWS,
    ) -> None:
        """Real rows followed by one broken row per breaker."""
        header, rows = self.real_rows(entity, style)
        rows = rows[:good]
        template = self.template(entity, header, rows)
        bad = []
        for breaker in breakers:
            row = dict(template)
            broken = breaker(row)
            bad.append(broken if broken is not None else [row.get(h, "") for h in header])
        content = _csv_bytes(header, rows + bad)
        self.write(name, entity, content, "published", len(rows) + len(bad), len(bad), what)


def _column(entity: str, name: str, style: Style) -> str:
    spec = ENTITIES[entity].column(name)
    return spec.zh if style.language == "zh" else spec.name


def write_dirty(
    con: duckdb.DuckDBPyConnection, plan: Plan, out: Path, clean_files: list[Path]
) -> dict[str, DirtyCase]:
    """Write every bad-input case next to the clean exports; returns them by name."""
    w = DirtyWriter(con, plan, out)
    en, zh = Style(language="en"), Style(language="zh")

    def setter(
        entity: str, style: Style, column: str, value: str, new_key: bool = True
    ) -> Callable[[dict[str, str]], None]:
        """A breaker that sets one field (and gives the row a key of its own)."""

        def apply(row: dict[str, str]) -> None:
            if new_key and entity == "orders":
                row[_column("orders", "order_id", style)] = w.new_id()
            if new_key and entity == "refunds":
                row[_column("refunds", "refund_id", style)] = w.new_id()
            row[_column(entity, column, style)] = value

        return apply

    quarantine = "load the rest, quarantine the row with file, row number, raw text and reason"
    w.bad_row_file(
        "missing_key",
        "orders",
        en,
        [setter("orders", en, "order_id", "", new_key=False)],
        f"an order without order_id; {quarantine}",
    )
    w.bad_row_file(
        "missing_required",
        "orders",
        zh,
        [setter("orders", zh, "buyer_id", "")],
        f"an order without the required buyer_id (买家ID); {quarantine}",
    )
    w.bad_row_file(
        "bad_time",
        "orders",
        en,
        [setter("orders", en, "created_at", "2021-11-31 25:61:00")],
        f"created_at is not a time; {quarantine}",
    )
    w.bad_row_file(
        "bad_number",
        "orders",
        zh,
        [setter("orders", zh, "paid_amount", "12.3.4")],
        f"paid_amount (实付金额) is not a number; {quarantine}",
    )
    w.bad_row_file(
        "negative_amount",
        "refunds",
        en,
        [setter("refunds", en, "refund_amount", "-30.00")],
        f"a refund of -30.00; {quarantine}",
    )
    w.bad_row_file(
        "unknown_enum",
        "orders",
        en,
        [setter("orders", en, "order_status", "已签收")],
        f"order_status 已签收 is not a contract label; {quarantine}",
    )

    def too_many(row: dict[str, str]) -> Row:
        row[_column("orders", "order_id", zh)] = w.new_id()
        return [*row.values(), "多出来的字段"]

    def too_few(row: dict[str, str]) -> Row:
        row[_column("orders", "order_id", en)] = w.new_id()
        return list(row.values())[:-3]

    w.bad_row_file(
        "too_many_fields", "orders", zh, [too_many], f"a row with one field too many; {quarantine}"
    )
    w.bad_row_file(
        "too_few_fields", "orders", en, [too_few], f"a row with three fields too few; {quarantine}"
    )
    w.bad_row_file(
        "scientific_order_id",
        "orders",
        en,
        [setter("orders", en, "order_id", "2.02111E+18", new_key=False)],
        "an order_id a spreadsheet turned into 2.02111E+18 (the digits are lost); "
        f"never cast it back to a number: {quarantine}",
    )
    w.bad_row_file(
        "gate_blocked",
        "orders",
        en,
        [
            setter("orders", en, "order_id", "", new_key=False),
            setter("orders", en, "created_at", "昨天 20:15"),
            setter("orders", en, "channel", "直播间"),
            setter("orders", en, "paid_amount", "-5.00"),
        ],
        "4 bad rows in 24 (17% > 5%): quarantine them, keep the load in raw, block it at "
        "the quality gate and show it in the quality report",
        good=20,
    )

    header, rows = w.real_rows("orders", en)
    text = _csv_bytes(header, rows).decode("utf-8") + "备注：含中文，全角逗号\n"
    w.write(
        "utf16_no_bom",
        "orders",
        text.encode("utf-16-le"),
        "rejected",
        None,
        0,
        "UTF-16 without a BOM: not UTF-8 or GB18030; reject the file (no rows), keep it "
        "in place and record the reason in the load ledger",
    )
    noise = random.Random(f"{plan.seed}/binary")
    blob = b"\x89PNG\r\n\x1a\n" + noise.randbytes(4096) + b"\xff\xfe"
    w.write(
        "binary",
        "refunds",
        blob,
        "rejected",
        None,
        0,
        "random binary bytes: reject the file and record why",
    )
    header, rows = w.real_rows("refunds", zh)
    w.write(
        "no_header",
        "refunds",
        _csv_bytes(None, rows),
        "rejected",
        None,
        0,
        "the first line is a data row, not a header: reject the file (required columns missing)",
    )
    w.write(
        "empty",
        "fans",
        b"",
        "rejected",
        None,
        0,
        "an empty file (0 bytes, no header): reject it",
    )
    header, rows = w.real_rows("orders", zh)
    drop = header.index(_column("orders", "buyer_id", zh))
    w.write(
        "missing_required_column",
        "orders",
        _csv_bytes(
            [h for n, h in enumerate(header) if n != drop],
            [[v for n, v in enumerate(row) if n != drop] for row in rows],
        ),
        "rejected",
        None,
        0,
        "the required column buyer_id / 买家ID is missing in both languages: reject the file",
    )

    header, rows = w.real_rows("orders", en)
    extra_rows = [[*row, f"COUPON{n:04d}" if n % 3 == 0 else ""] for n, row in enumerate(rows)]
    w.write(
        "extra_column",
        "orders",
        _csv_bytes([*header, "coupon_code"], extra_rows),
        "published",
        len(rows),
        0,
        "an unknown column coupon_code: load every row, keep the column in the raw layer "
        "(_extra) and report it; never a reason to fail",
    )

    header, rows = w.real_rows("refunds", en)
    orphan = w.template("refunds", header, rows)
    orphan[_column("refunds", "refund_id", en)] = w.new_id()
    orphan[_column("refunds", "order_id", en)] = w.new_id()
    rows = [*rows, list(orphan.values())]
    w.write(
        "orphan_refund",
        "refunds",
        _csv_bytes(header, rows),
        "published",
        len(rows),
        0,
        "the last refund is for an order that never arrives: load it (refunds may come "
        "before their order); a relationship check reports it as an orphan",
    )

    for entity, style in (("violations", zh), ("fans", en)):
        header, rows = w.real_rows(entity, style)
        stranger = w.template(entity, header, rows)
        stranger[_column(entity, "store_id", style)] = "S999"
        if entity == "violations":
            stranger[_column(entity, "violation_id", style)] = f"WG{w.day}9999999"
        rows = [*rows, list(stranger.values())]
        w.write(
            "unknown_store",
            entity,
            _csv_bytes(header, rows),
            "published",
            len(rows),
            0,
            f"a {entity} row for store S999, which is not in seeds/stores.csv: load it and "
            "report the unknown store (a warning-level check), do not drop it",
            key=f"unknown_store_{entity}",
        )

    original = next(path for path in clean_files if path.parent.name == "orders")
    copy = out / "orders" / f"orders_{w.day}_dirty_same_bytes.csv"
    shutil.copyfile(original, copy)
    w.cases["same_bytes"] = DirtyCase(
        "same_bytes",
        "orders",
        f"orders/{copy.name}",
        "duplicate",
        None,
        0,
        f"the same bytes as orders/{original.name} under another name: load once, "
        "record this one as a duplicate",
    )
    misplaced = out / f"orders_{w.day}_dirty_misplaced.csv"
    shutil.copyfile(original, misplaced)
    w.cases["misplaced"] = DirtyCase(
        "misplaced",
        "orders",
        misplaced.name,
        "rejected",
        None,
        0,
        "an orders export at the landing folder's top, outside orders/: record it as "
        "rejected, saying where it belongs",
    )
    return w.cases
