"""Ingest on real DuckDB files: every case of the export contract (EXPORTS.md)."""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest import loader
from dagster_project.defs.ingest.contract import ENTITIES, ORDERS
from dagster_project.defs.ingest.loader import ingest_entity, parse_parameters, parse_statement
from dagster_project.defs.ingest.tables import create_tables, insert_rows

from .exports import order, write_export

LOADED_AT = datetime(2021, 10, 1, 8, 0, 0)


def ingest(con, landing: Path, threshold: float = 0.05):
    return ingest_entity(con, ORDERS, landing / "orders", landing / "tmp", LOADED_AT, threshold)


def raw_orders(con) -> list[tuple]:
    return con.execute(
        "select order_id, _row_number, store_name, paid_amount, paid_at, trust_card "
        "from raw.orders order by _file_name, _row_number"
    ).fetchall()


def quarantined(con) -> list[tuple]:
    return con.execute(
        "select row_number, reason from quality.quarantine order by row_number"
    ).fetchall()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("language", ["en", "zh"])
def test_headers_in_either_language_and_every_encoding_load_with_chinese_intact(
    con, tmp_path, encoding, language
):
    rows = [order("1000000001", store_name='露露,"茶"叶'), order("1000000002")]
    write_export(
        tmp_path,
        "orders",
        "orders_20210902.csv",
        rows,
        language=language,
        encoding=encoding,
        newline="\r\n",
    )
    [entry] = ingest(con, tmp_path)
    assert (entry.status, entry.rows_read, entry.rows_loaded) == ("published", 2, 2)
    assert entry.encoding == encoding and entry.header_language == language
    assert [row[2] for row in raw_orders(con)] == ['露露,"茶"叶', "露露茶叶"]


def test_column_order_spaces_and_value_variants(con, tmp_path):
    columns = list(reversed(ORDERS.column_names))
    rows = [
        order("1000000001", paid_amount="¥1,299.00", paid_at="2021/09/01 20:01", trust_card="Y"),
        order("1000000002", paid_amount="0.5", paid_at="2021-09-01 20:01:30", trust_card="0"),
    ]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows, columns=columns)
    text = path.read_text().splitlines()
    path.write_text("\n".join([" , ".join(text[0].split(",")), *text[1:]]) + "\n")
    [entry] = ingest(con, tmp_path)
    assert entry.status == "published", entry.reason
    loaded = raw_orders(con)
    assert [(row[3], row[4], row[5]) for row in loaded] == [
        (pytest.approx(1299), datetime(2021, 9, 1, 20, 1), True),
        (pytest.approx(0.5), datetime(2021, 9, 1, 20, 1, 30), False),
    ]


def test_values_are_trimmed_of_surrounding_spaces_and_a_blank_value_is_missing(con, tmp_path):
    rows = [
        order(
            "1000000001",
            store_name="  露露 茶叶 ",
            paid_amount=" 1,299.00",
            paid_at="2021/09/01 20:01 ",
        ),
        order("1000000002", store_name=" ", trust_card="   "),
        order("1000000003", store_id="   "),
        # Only ASCII spaces are trimmed: an ideographic space is kept, as exported.
        order("1000000004", store_name="露露茶叶\u3000"),
        order("1000000005", paid_at="2021-09-01 20:01\u3000"),
    ]
    write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.rows_loaded, entry.rows_quarantined) == (3, 2)
    assert [row[2:] for row in raw_orders(con)] == [
        ("露露 茶叶", pytest.approx(1299), datetime(2021, 9, 1, 20, 1), True),
        (None, pytest.approx(100), datetime(2021, 9, 1, 20, 1), None),
        ("露露茶叶\u3000", pytest.approx(100), datetime(2021, 9, 1, 20, 1), True),
    ]
    assert quarantined(con) == [
        (3, "store_id: required value is missing"),
        (5, "paid_at: 2021-09-01 20:01\u3000 is not a time"),
    ]


def test_extra_columns_are_kept_and_reported(con, tmp_path):
    rows = [order() | {"备注": "加急"}]
    write_export(
        tmp_path, "orders", "orders_20210902.csv", rows, columns=[*ORDERS.column_names, "备注"]
    )
    [entry] = ingest(con, tmp_path)
    assert entry.status == "published" and entry.extra_columns == "备注"
    extra = con.execute("select _extra from raw.orders").fetchone()[0]
    assert json.loads(extra) == {"备注": "加急"}


BAD_ROWS = {
    "missing key": (order(""), "order_id: required value is missing"),
    "missing required": (order("1000000003", buyer_id=""), "buyer_id: required value is missing"),
    "bad time": (
        order("1000000004", created_at="2021-13-45 10:00:00"),
        "created_at: 2021-13-45 10:00:00 is not a time",
    ),
    "bad number": (order("1000000005", quantity="two"), "quantity: two is not an integer"),
    "negative amount": (
        order("1000000006", paid_amount="-5.00"),
        "paid_amount: negative amount -5.00",
    ),
    "unknown enum": (
        order("1000000007", order_status="已退款"),
        "order_status: unknown value 已退款",
    ),
    "spreadsheet id": (order("2.02111E+18"), "a spreadsheet turned it into a number"),
    "level out of range": (
        order("1000000008", fan_club_level="21"),
        "fan_club_level: 21 is above 20",
    ),
    # DuckDB's cast alone would load these as 2, 1000, 16, 10, 1250.00, 123.00 and NULL.
    "fraction for an integer": (order("1000000009", quantity="1.5"), "quantity: 1.5 is not"),
    "exponent for an integer": (order("1000000010", quantity="1e3"), "quantity: 1e3 is not"),
    "hexadecimal integer": (order("1000000011", quantity="0x10"), "quantity: 0x10 is not"),
    "underscored integer": (
        order("1000000012", fan_club_level="1_0"),
        "fan_club_level: 1_0 is not an integer",
    ),
    "decimal comma": (
        order("1000000013", paid_amount="12,50"),
        "paid_amount: 12,50 is not an amount in yuan",
    ),
    "misplaced separators": (
        order("1000000014", paid_amount="1,2,3"),
        "paid_amount: 1,2,3 is not an amount in yuan",
    ),
    "amount too large": (
        order("1000000015", unit_price="12345678901234567"),
        "unit_price: 12345678901234567 is not an amount in yuan",
    ),
    # Nor spaces or a yuan sign inside, nor a first group of 0 (1250.00, 12.00, 1.00 before).
    "space inside an amount": (
        order("1000000016", paid_amount="12 50"),
        "paid_amount: 12 50 is not an amount in yuan",
    ),
    "yuan sign inside an amount": (
        order("1000000017", paid_amount="1¥2"),
        "paid_amount: 1¥2 is not an amount in yuan",
    ),
    "separated leading zero": (
        order("1000000018", paid_amount="0,001"),
        "paid_amount: 0,001 is not an amount in yuan",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_row_that_breaks_a_rule_is_quarantined_and_the_rest_loads(con, tmp_path, case):
    bad, reason = BAD_ROWS[case]
    good = [order(f"10000001{index:02d}") for index in range(40)]
    write_export(tmp_path, "orders", "orders_20210902.csv", [*good[:20], bad, *good[20:]])
    [entry] = ingest(con, tmp_path)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (41, 40, 1)
    assert entry.status == "published"  # 1 of 41 is under the 5% threshold
    row_number, found, masked = con.execute(
        "select row_number, reason, raw_record_masked from quality.quarantine"
    ).fetchone()
    assert row_number == 21
    assert reason in found
    assert "13812345678" not in masked and "文三路" not in masked
    assert json.loads(masked)["receiver_phone"] == "138****5678"


@pytest.fixture
def reads(monkeypatch) -> list[bool]:
    """Whether each read of the loader ran in parallel, in order."""
    seen: list[bool] = []
    parse = loader._parse

    def recorded(*args, parallel: bool = True, **kwargs):
        seen.append(parallel)
        return parse(*args, parallel=parallel, **kwargs)

    monkeypatch.setattr(loader, "_parse", recorded)
    return seen


def test_wrong_field_counts_and_blank_lines_keep_row_numbers_right(con, tmp_path, reads):
    good = [order(f"10000001{index:02d}") for index in range(4)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", good[:2])
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n1000000999,S001\n")  # a blank line, then too few fields
        handle.write(",".join(["1000000998"] * 22) + "\n")  # too many fields
    write_rows = path.read_text()
    tail = write_export(tmp_path / "x", "orders", "t.csv", good[2:]).read_text().split("\n", 1)[1]
    path.write_text(write_rows + tail)
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (6, 4, 2)
    assert quarantined(con) == [
        (3, "wrong field count: expected 21 fields, found 2"),
        (4, "wrong field count: expected 21 fields, found 22"),
    ]
    assert [row[:2] for row in raw_orders(con)] == [
        ("1000000100", 1),
        ("1000000101", 2),
        ("1000000102", 5),
        ("1000000103", 6),
    ]
    assert reads == [True]  # its rows read and set aside add up to its lines: read once


@pytest.mark.parametrize("after_another_layout", [False, True])
def test_row_numbers_stay_right_in_a_file_read_in_parallel_chunks(
    con, tmp_path, after_another_layout
):
    # ~18 MB: DuckDB's reader splits the file into buffers read by several threads, and the
    # loader numbers rows by the order they land in; a plan that does not keep that order
    # (a join in the parse) numbered most rows wrongly on files of this size. After another
    # header layout, the file's rows are appended to those already parsed.
    con.execute("set threads = 4")
    if after_another_layout:
        earlier = [order("2000000001"), order("2000000002", quantity="x"), order("2000000003")]
        columns = list(reversed(ORDERS.column_names))
        write_export(tmp_path, "orders", "orders_20210901.csv", earlier, columns=columns)
    count = 80_000
    rows = [order(str(1_000_000_000 + number)) for number in range(1, count + 1)]
    rows[50_000 - 1]["quantity"] = "many"  # breaks a rule: quarantined as row 50000
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[60_000] = "1000060000,S001"  # data row 60000 has too few fields
    path.write_text("\n".join(lines), encoding="utf-8")
    assert path.stat().st_size > 16_000_000
    *before, entry = ingest(con, tmp_path, threshold=1.0)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (count, count - 2, 2)
    assert con.execute(
        "select row_number from quality.quarantine where file_name = ? order by row_number",
        [entry.file_name],
    ).fetchall() == [(50_000,), (60_000,)]
    misnumbered = con.execute(
        "select count(*) from raw.orders where order_id like '1%' "
        "and order_id::bigint - 1000000000 != _row_number"
    ).fetchone()
    assert misnumbered == (0,)
    if after_another_layout:
        [first] = before
        assert (first.rows_loaded, first.rows_quarantined) == (2, 1)
        assert con.execute(
            "select order_id, _row_number from raw.orders where _load_id = ? order by 2",
            [first.load_id],
        ).fetchall() == [("2000000001", 1), ("2000000003", 3)]
        assert con.execute(
            "select row_number from quality.quarantine where load_id = ?", [first.load_id]
        ).fetchall() == [(2,)]


def test_a_file_of_rows_with_a_field_too_many_is_quarantined_to_its_last_row(con, tmp_path, reads):
    # ~17 MB, every data row with one field too many. DuckDB 1.5's parallel reader set aside
    # the rows of the first 16 MB buffer (69,565 of them) and read no further, silently; the
    # loader reads a file with set-aside rows again, on one thread.
    con.execute("set threads = 4")
    count = 75_000
    rows = [order(str(1_000_000_000 + number)) for number in range(1, count + 1)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    header, *lines = path.read_text(encoding="utf-8").split("\n")
    path.write_text(
        "\n".join([header, *(line + ",extra" if line else line for line in lines)]),
        encoding="utf-8",
    )
    assert path.stat().st_size > 16 * 1024 * 1024
    [entry] = ingest(con, tmp_path)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (count, 0, count)
    assert con.execute(
        "select count(*), count(distinct row_number), min(row_number), max(row_number), "
        "any_value(reason) from quality.quarantine"
    ).fetchone() == (count, count, 1, count, "wrong field count: expected 21 fields, found 22")
    assert reads == [True, False]  # read again on one thread


@pytest.mark.parametrize("entity", sorted(ENTITIES))
def test_every_entity_parses_with_a_plan_that_keeps_reading_order(con, tmp_path, entity):
    # Rows are numbered by the order they land in the temp table: DuckDB keeps it for a
    # plan of projections (an order-preserving batch insert), not through a join; the same
    # for the rows of a later header layout, appended.
    contract = ENTITIES[entity]
    path = write_export(tmp_path, entity, "x.csv", [])
    parse = parse_parameters([path], 0)
    statement = parse_statement(contract, contract.column_names)
    create = con.execute("explain " + statement, parse).fetchall()[0][1]
    assert "BATCH_CREATE_TABLE_AS" in create and "JOIN" not in create
    con.execute(statement, parse)  # a later header layout's rows are appended
    statement = parse_statement(contract, contract.column_names, append=True)
    append = con.execute("explain " + statement, parse).fetchall()[0][1]
    assert "BATCH_INSERT" in append and "JOIN" not in append


def test_too_many_bad_rows_block_the_load(con, tmp_path):
    rows = [order(f"10000001{index:02d}") for index in range(9)] + [order("1", quantity="x")]
    write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    [entry] = ingest(con, tmp_path)
    assert entry.status == "blocked"
    assert "quarantined 1 of 10 rows (10.0%)" in entry.reason
    assert entry.rows_loaded == 9  # kept in raw, held back from the marts


def test_every_one_of_thousands_of_bad_rows_is_quarantined_with_its_row_and_reason(con, tmp_path):
    count = 20_000
    rows = [order(str(1_000_000_000 + number)) for number in range(1, count + 1)]
    for number in range(2, count + 1, 2):
        rows[number - 1]["quantity"] = f"q{number}"
    write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    [entry] = ingest(con, tmp_path)
    assert (entry.status, entry.rows_loaded, entry.rows_quarantined) == ("blocked", 10_000, 10_000)
    assert quarantined(con) == [
        (number, f"quantity: q{number} is not an integer") for number in range(2, count + 1, 2)
    ]
    records = con.execute(
        "select row_number, raw_record ->> 'order_id', raw_record_masked ->> 'quantity' "
        "from quality.quarantine where row_number in (2, 20000) order by 1"
    ).fetchall()
    assert records == [(2, "1000000002", "q2"), (20_000, "1000020000", "q20000")]


def test_rows_are_inserted_column_by_column_with_their_types_and_order(con):
    con.execute("create table t (a varchar, b double, c boolean, d date, e timestamp, f json)")
    rows = [
        ("x", 1, True, date(2021, 1, 1), datetime(2021, 1, 1, 8), '{"城市": "杭州"}'),
        (None, 2.5, None, None, None, None),
        ("z", None, False, date(2021, 1, 2), datetime(2021, 1, 2, 9), "[1]"),
    ]
    insert_rows(con, "insert into t", rows)
    insert_rows(con, "insert into t", [])  # nothing to insert: no statement
    assert con.execute("select * from t").fetchall() == [
        ("x", 1.0, True, date(2021, 1, 1), datetime(2021, 1, 1, 8), '{"城市": "杭州"}'),
        (None, 2.5, None, None, None, None),
        ("z", None, False, date(2021, 1, 2), datetime(2021, 1, 2, 9), "[1]"),
    ]
    insert_rows(con, "insert into t (b)", [(None,), (None,)])  # a column of NULLs only
    assert con.execute("select count(*) from t where b is null").fetchone() == (3,)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "the file is empty"),
        ("x,y\n1,2\n".encode("utf-16"), "UTF-16 or binary"),
        (b"1000000001,S001,B1\n", "no header row"),
        (
            "订单编号,店铺ID\n1000000001,S001\n".encode(),
            "required column missing in both languages",
        ),
        (bytes(range(128, 256)) * 10, "neither UTF-8 nor GB18030"),
    ],
)
def test_an_unreadable_file_is_rejected_with_a_reason_and_loads_nothing(
    con, tmp_path, content, reason
):
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / "orders_20210902.csv").write_bytes(content)
    [entry] = ingest(con, tmp_path)
    assert entry.status == "rejected" and reason in entry.reason
    assert "stays in the landing folder" in entry.reason
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == 0
    assert (tmp_path / "orders" / "orders_20210902.csv").exists()


def test_a_misnamed_file_is_rejected_not_ignored(con, tmp_path):
    write_export(tmp_path, "orders", "export-final.csv", [order()])
    [entry] = ingest(con, tmp_path)
    assert entry.status == "rejected" and "orders_<YYYYMMDD>" in entry.reason


@pytest.mark.parametrize(
    ("name", "said"),
    [("orders_20210902.csv.gz", "unpack it"), ("orders_20210902.xlsx", "save it as CSV")],
)
def test_a_compressed_file_or_a_spreadsheet_is_rejected_saying_what_to_do(
    con, tmp_path, name, said
):
    (tmp_path / "orders").mkdir()
    (tmp_path / "orders" / name).write_bytes(b"PK\x03\x04 not a CSV")
    [entry] = ingest(con, tmp_path)
    assert entry.status == "rejected" and said in entry.reason and "rename" not in entry.reason


def test_same_bytes_load_once_and_a_corrected_file_is_a_new_load(con, tmp_path):
    first = write_export(tmp_path, "orders", "orders_20210902.csv", [order()])
    (tmp_path / "orders" / "orders_20210903_again.csv").write_bytes(first.read_bytes())
    entries = ingest(con, tmp_path)
    assert [entry.status for entry in entries] == ["published", "duplicate"]
    assert "same bytes as orders_20210902.csv" in entries[1].reason
    assert ingest(con, tmp_path) == []  # a re-run sees nothing new
    write_export(tmp_path, "orders", "orders_20210902.csv", [order(paid_amount="90.00")])
    [corrected] = ingest(con, tmp_path)
    assert corrected.status == "published" and corrected.load_id != entries[0].load_id
    ledger = con.execute("select count(*) from quality.load_ledger").fetchone()[0]
    assert ledger == 3


@pytest.mark.parametrize(
    ("other", "statuses"),
    [
        ("orders_20210902.CSV", ("published", "duplicate")),
        ("orders_20210902.txt", ("rejected", "published")),
    ],
)
def test_the_same_bytes_under_a_name_differing_in_its_extension_are_two_loads(
    con, tmp_path, other, statuses
):
    """A load is keyed by its file's folder, whole name and bytes: `x.CSV` (or a rejected
    `x.txt`) then `x.csv` with the same bytes once made one load id twice, and every later
    run failed on the ledger's key."""
    first = write_export(tmp_path, "orders", other, [order()])
    [before] = ingest(con, tmp_path)
    (tmp_path / "orders" / "orders_20210902.csv").write_bytes(first.read_bytes())
    if other.endswith(".txt"):
        first.unlink()  # renamed, as its reason asks
    [after] = ingest(con, tmp_path)
    assert (before.status, after.status) == statuses and before.load_id != after.load_id
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == 1
    assert ingest(con, tmp_path) == []


def test_a_file_in_two_export_folders_is_two_loads(con, tmp_path):
    """The same bytes landed in refunds/ by mistake are a load of refunds (rejected by its
    name), never a second load with the orders file's id."""
    first = write_export(tmp_path, "orders", "orders_20210902.csv", [order()])
    (tmp_path / "refunds").mkdir()
    (tmp_path / "refunds" / "orders_20210902.csv").write_bytes(first.read_bytes())
    [loaded] = ingest(con, tmp_path)
    [astray] = ingest_entity(
        con, ENTITIES["refunds"], tmp_path / "refunds", tmp_path / "tmp", LOADED_AT, 0.05
    )
    assert (loaded.status, astray.status) == ("published", "rejected")
    assert loaded.load_id != astray.load_id


def test_a_duplicate_is_recorded_only_with_the_load_it_repeats(con, tmp_path, monkeypatch):
    """When storing the loads fails, the run records no file as a duplicate of one that was
    never stored: the next run reads both again, and the rows are not lost."""
    first = write_export(tmp_path, "orders", "orders_20210902.csv", [order()])
    (tmp_path / "orders" / "orders_20210902_again.csv").write_bytes(first.read_bytes())

    def broken(*_args, **_kwargs):
        raise duckdb.IOException("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(loader, "_store", broken)
        with pytest.raises(duckdb.IOException):
            ingest(con, tmp_path)
    assert con.execute("select count(*) from quality.load_ledger").fetchone()[0] == 0
    entries = ingest(con, tmp_path)
    assert [entry.status for entry in entries] == ["published", "duplicate"]
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == 1


def test_a_gb18030_file_with_a_name_as_long_as_the_system_allows_loads(con, tmp_path):
    """Its UTF-8 copy is named by the file's hash: named after the file, it was too long."""
    name = "orders_20210902_" + "x" * (255 - len("orders_20210902_.csv")) + ".csv"
    write_export(tmp_path, "orders", name, [order()], encoding="gb18030")
    [entry] = ingest(con, tmp_path)
    assert (entry.status, entry.encoding, entry.rows_loaded) == ("published", "gb18030", 1)


def test_a_rerun_hashes_only_files_whose_size_or_time_changed(con, tmp_path, monkeypatch):
    from dagster_project.defs.ingest import loader

    path = write_export(tmp_path, "orders", "orders_20210902.csv", [order()])
    [first] = ingest(con, tmp_path)
    hashed: list[str] = []
    real_scan = loader.scan
    monkeypatch.setattr(loader, "scan", lambda p: hashed.append(p.name) or real_scan(p))
    assert ingest(con, tmp_path) == [] and hashed == []  # unchanged on disk: not read again
    path.touch()  # same bytes, new time: hashed again, still the same load
    assert ingest(con, tmp_path) == [] and hashed == ["orders_20210902.csv"]
    write_export(tmp_path, "orders", "orders_20210902.csv", [order(paid_amount="1.00")])
    [corrected] = ingest(con, tmp_path)
    assert corrected.load_id != first.load_id and len(hashed) == 2


def test_a_file_rewritten_while_it_is_hashed_is_read_again_next_run(con, tmp_path, monkeypatch):
    from dagster_project.defs.ingest import loader

    path = write_export(tmp_path, "orders", "orders_20210902.csv", [order("1000000001")])
    real_scan = loader.scan

    def rewritten_while_read(file):
        scanned = real_scan(file)  # the first version's bytes
        write_export(tmp_path, "orders", file.name, [order("1000000001"), order("1000000002")])
        return scanned

    monkeypatch.setattr(loader, "scan", rewritten_while_read)
    [first] = ingest(con, tmp_path)
    monkeypatch.setattr(loader, "scan", real_scan)
    # The digest was recorded with the size and time the file had before it was read, so the
    # second version does not pass for the first: it is hashed again and loaded.
    [second] = ingest(con, tmp_path)
    assert second.load_id != first.load_id and second.file_sha256 == real_scan(path)[0]
    assert second.rows_loaded == 2


def test_ledger_accounts_for_every_row_and_lineage_is_kept(con, tmp_path):
    write_export(
        tmp_path,
        "orders",
        "orders_20210902_S001.csv",
        [order("1000000001"), order("x")],
        language="zh",
    )
    [entry] = ingest(con, tmp_path, threshold=1.0)
    ledger = con.execute(
        "select load_id, entity, file_name, export_date, status, rows_read, rows_loaded, "
        "rows_quarantined from quality.load_ledger"
    ).fetchone()
    assert ledger[1:] == (
        "orders",
        "orders_20210902_S001.csv",
        datetime(2021, 9, 2).date(),
        "published",
        2,
        1,
        1,
    )
    lineage = con.execute(
        "select _load_id, _file_name, _row_number, _loaded_at from raw.orders"
    ).fetchone()
    assert lineage == (entry.load_id, "orders_20210902_S001.csv", 1, LOADED_AT)


def test_every_entity_reads_its_own_contract(con, tmp_path):
    for entity in ENTITIES.values():
        write_export(tmp_path, entity.name, f"{entity.name}_20210902.csv", [], language="zh")
        entries = ingest_entity(con, entity, tmp_path / entity.name, tmp_path, LOADED_AT, 0.05)
        assert [entry.status for entry in entries] == ["published"], entries[0].reason


def test_a_column_added_to_the_contract_is_added_to_an_existing_raw_table(con, tmp_path):
    con.execute("alter table raw.orders drop column category")
    create_tables(con)
    columns = [row[0] for row in con.execute("describe raw.orders").fetchall()]
    assert "category" in columns


def test_integers_and_amounts_of_every_accepted_shape_load(con, tmp_path):
    rows = [
        order("1000000001", quantity="+2", paid_amount="¥ 1,234,567.5"),
        order("1000000002", quantity="007", paid_amount="1234567890123456.99"),
        order("1000000003", paid_amount="￥0.05"),
    ]
    write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    [entry] = ingest(con, tmp_path)
    assert (entry.rows_loaded, entry.rows_quarantined) == (3, 0)
    loaded = con.execute("select quantity, paid_amount from raw.orders order by order_id")
    assert [(quantity, str(paid)) for quantity, paid in loaded.fetchall()] == [
        (2, "1234567.50"),
        (7, "1234567890123456.99"),
        (1, "0.05"),
    ]


def test_a_rejected_file_renamed_as_its_reason_asks_loads(con, tmp_path):
    """A rejected file loaded nothing: its bytes under a new name are no duplicate of it."""
    path = write_export(tmp_path, "orders", "orders_2021-09-02.csv", [order()])
    [rejected] = ingest(con, tmp_path)
    assert rejected.status == "rejected" and "rename it" in rejected.reason
    path.rename(path.with_name("orders_20210902.csv"))
    [renamed] = ingest(con, tmp_path)
    assert (renamed.status, renamed.rows_loaded) == ("published", 1), renamed.reason
    # In one run too: the misnamed copy, read first, is rejected; the well-named one loads.
    (tmp_path / "orders" / "orders_0903.csv").write_bytes(
        write_export(tmp_path / "x", "orders", "x.csv", [order("1000000002")]).read_bytes()
    )
    (tmp_path / "orders" / "orders_20210903.csv").write_bytes(
        (tmp_path / "orders" / "orders_0903.csv").read_bytes()
    )
    entries = ingest(con, tmp_path)
    assert [(entry.file_name, entry.status) for entry in entries] == [
        ("orders_0903.csv", "rejected"),
        ("orders_20210903.csv", "published"),
    ]
    assert con.execute("select count(*) from raw.orders").fetchone()[0] == 2


@pytest.mark.parametrize("name", ["orders_20210902_[1].csv", "orders_20210902_*.csv", "a?b"])
def test_file_and_folder_names_with_glob_characters_are_read_as_they_are(con, tmp_path, name):
    """DuckDB's reader takes `*`, `?` and `[…]` in a path as a pattern: `orders_…_[1].csv`
    read `orders_…_1.csv`, twice."""
    landing = tmp_path / ("landing[1]" if name == "a?b" else "landing")
    name = "orders_20210902_a?b.csv" if name == "a?b" else name
    write_export(landing, "orders", "orders_20210902_1.csv", [order("1000000001")])
    write_export(landing, "orders", name, [order("1000000002"), order("x")])
    entries = ingest(con, landing, threshold=1.0)
    assert {entry.file_name: entry.rows_loaded for entry in entries} == {
        "orders_20210902_1.csv": 1,
        name: 1,
    }
    assert con.execute("select _file_name, order_id from raw.orders order by 2").fetchall() == [
        ("orders_20210902_1.csv", "1000000001"),
        (name, "1000000002"),
    ]
    assert quarantined(con) == [(2, "order_id: x is not 10-20 digits")]


@pytest.mark.parametrize("text", ["x", "中"], ids=["ascii", "chinese"])
def test_a_row_longer_than_the_readers_line_limit_loads(con, tmp_path, text, reads):
    """DuckDB reads lines up to 2 MB at first; a longer one (cut inside a Chinese character,
    DuckDB failed the whole file) is read on a second reading of its file."""
    con.execute("set memory_limit = '1GB'")  # what a run may use; DuckDB's buffer is 16 lines
    rows = [order(f"10000001{index:02d}") for index in range(4)]
    rows[1]["item_name"] = text * 2_100_000
    rows[2]["quantity"] = "two"
    write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.status, entry.rows_loaded, entry.rows_quarantined) == ("published", 3, 1)
    loaded = con.execute("select _row_number, length(item_name) from raw.orders order by 1")
    assert loaded.fetchall() == [(1, 3), (2, 2_100_000), (4, 3)]
    assert quarantined(con) == [(3, "quantity: two is not an integer")]
    assert len(reads) == 2


def test_a_row_longer_than_any_line_the_reader_takes_rejects_its_file_alone(
    con, tmp_path, monkeypatch
):
    monkeypatch.setattr(loader, "LONG_LINE_BYTES", 3_000_000)
    rows = [order("1000000100"), order("1000000101", item_name="中" * 1_100_000)]
    write_export(tmp_path, "orders", "orders_20210902_a.csv", rows)
    write_export(tmp_path, "orders", "orders_20210902_b.csv", [order("1000000102")])
    entries = ingest(con, tmp_path)
    assert [(entry.status, entry.rows_loaded) for entry in entries] == [
        ("rejected", 0),
        ("published", 1),
    ]
    assert entries[0].reason.startswith("the CSV reader could not read the file: ")
    assert con.execute("select order_id from raw.orders").fetchall() == [("1000000102",)]


def test_a_file_the_reader_fails_to_read_again_is_rejected_alone(con, tmp_path, monkeypatch):
    """A file with a line over the limit is read again alone; if that reading fails, the file
    is rejected and the others of its batch load."""
    parse = loader._parse

    def failing_again(*args, long_lines: bool = False, **kwargs):
        if long_lines:
            raise duckdb.IOException("IO Error: the disk failed")
        return parse(*args, **kwargs)

    monkeypatch.setattr(loader, "_parse", failing_again)
    rows = [order("1000000100"), order("1000000101", item_name="x" * 2_100_000)]
    write_export(tmp_path, "orders", "orders_20210902_a.csv", rows)
    write_export(tmp_path, "orders", "orders_20210902_b.csv", [order("1000000102")])
    entries = ingest(con, tmp_path)
    assert [(entry.status, entry.rows_loaded) for entry in entries] == [
        ("rejected", 0),
        ("published", 1),
    ]
    assert "IO Error: the disk failed" in entries[0].reason
    assert con.execute("select order_id from raw.orders").fetchall() == [("1000000102",)]
    assert con.execute("select count(*) from quality.quarantine").fetchone() == (0,)


def test_an_unknown_column_name_given_twice_keeps_both(con, tmp_path):
    rows = [order() | {"备注": "加急"}]
    path = write_export(
        tmp_path, "orders", "orders_20210902.csv", rows, columns=[*ORDERS.column_names, "备注"]
    )
    header, row = path.read_text().splitlines()
    path.write_text(f"{header},备注\n{row},送礼\n")
    [entry] = ingest(con, tmp_path)
    assert entry.status == "published", entry.reason
    assert entry.extra_columns == "备注, 备注_23"
    extra = con.execute("select _extra from raw.orders").fetchone()[0]
    assert json.loads(extra) == {"备注": "加急", "备注_23": "送礼"}


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_a_blank_line_inside_a_quoted_field_is_part_of_its_row(con, tmp_path, newline, reads):
    rows = [order(f"10000001{index:02d}") for index in range(4)]
    rows[1]["item_name"] = f"大红袍{newline}{newline}礼盒"
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows, newline=newline)
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"1000000999,S001{newline}")  # data row 5: too few fields
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (5, 4, 1)
    assert quarantined(con) == [(5, "wrong field count: expected 21 fields, found 2")]
    assert [row[:2] for row in raw_orders(con)] == [
        ("1000000100", 1),
        ("1000000101", 2),
        ("1000000102", 3),
        ("1000000103", 4),
    ]
    assert reads == [True]  # its rows read and set aside add up to its rows: read once


def test_a_quote_inside_an_unquoted_field_opens_no_quoted_field(con, tmp_path, reads):
    """`14"显示器` is a value with a quote in it, as DuckDB reads it: the blank lines after
    it are skipped lines, not part of a field, and the rows after them keep their numbers."""
    rows = [order(f"10000001{index:02d}") for index in range(4)]
    rows[1]["item_name"] = "14-inch"
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    lines = path.read_text().split("\n")
    lines[2] = lines[2].replace("14-inch", '14"显示器')
    lines[3:3] = ["", "", "x,y,z"]  # two blank lines, then data row 3: too few fields
    path.write_text("\n".join(lines))
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.rows_read, entry.rows_quarantined) == (5, 1)
    assert quarantined(con) == [(3, "wrong field count: expected 21 fields, found 3")]
    assert [row[:2] for row in raw_orders(con)] == [
        ("1000000100", 1),
        ("1000000101", 2),
        ("1000000102", 4),
        ("1000000103", 5),
    ]
    assert con.execute(
        "select item_name from raw.orders where order_id = '1000000101'"
    ).fetchone() == ('14"显示器',)
    assert reads == [True]


@pytest.mark.parametrize("far_down", [False, True], ids=["in-the-head", "far-down"])
def test_a_row_with_a_nul_byte_is_set_aside_wherever_it_is(con, tmp_path, far_down):
    rows = [order(f"1{index:09d}") for index in range(600 if far_down else 3)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    lines = path.read_bytes().split(b"\n")
    bad = len(lines) - 3 if far_down else 2  # a data row after, or within, the first 64 KiB
    lines[bad] = lines[bad].replace("大红袍".encode(), "大红\x00袍".encode())
    path.write_bytes(b"\n".join(lines))
    assert (path.read_bytes().index(b"\x00") > 1 << 16) == far_down
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.status, entry.rows_quarantined) == ("published", 1), entry.reason
    assert quarantined(con) == [(bad, "item_name: a NUL character")]
    assert con.execute(
        "select count(*) from raw.orders where contains(item_name, chr(0))"
    ).fetchone() == (0,)


def test_a_gb18030_file_whose_first_chinese_text_is_far_down_loads_as_gb18030(con, tmp_path):
    """Its first 64 KiB are ASCII, which UTF-8 and GB18030 write alike."""
    fans = ENTITIES["fans"]
    lines = [",".join(fans.column_names)]
    lines += [f"2021-09-02,S001,F{index},2021-09-01 10:00:00,true,0," for index in range(2000)]
    lines.append("2021-09-02,S001,F9999,2021-09-01 10:00:00,是,3,2021-09-01 10:05:00")
    path = tmp_path / "fans" / "fans_20210902.csv"
    path.parent.mkdir()
    path.write_bytes(("\n".join(lines) + "\n").encode("gb18030"))
    assert path.read_bytes()[: 1 << 16].isascii() and not path.read_bytes().isascii()
    [entry] = ingest_entity(con, fans, path.parent, tmp_path / "tmp", LOADED_AT, 0.05)
    assert (entry.encoding, entry.rows_loaded, entry.rows_quarantined) == ("gb18030", 2001, 0)
    last = con.execute("select is_following from raw.fans where fan_id = 'F9999'").fetchone()
    assert last == (True,)


def test_a_byte_neither_encoding_has_is_named_by_line(con, tmp_path):
    path = write_export(tmp_path, "orders", "orders_20210902.csv", [order()] * 3)
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace("露露".encode(), b"\xff\xfe")
    path.write_bytes(b"\n".join(lines))
    [entry] = ingest(con, tmp_path)
    assert entry.status == "rejected"
    assert "neither UTF-8 nor GB18030 text (line 3," in entry.reason


def test_files_outside_the_export_folders_are_recorded_with_where_they_belong(con, tmp_path):
    landing = tmp_path / "landing"
    good = write_export(landing, "orders", "orders_20210902.csv", [order()])
    for place in ("products/products_20210902.csv", "Orders/o.csv"):
        (landing / place).parent.mkdir(parents=True, exist_ok=True)
        (landing / place).write_bytes(good.read_bytes())
    write_export(tmp_path / "x", "orders", "orders_20210903.csv", [order("1000000003")]).rename(
        landing / "orders_20210903.csv"
    )
    (landing / "orders" / "2021").mkdir()
    (landing / "orders" / "2021" / "orders_20210904.csv").write_bytes(good.read_bytes())
    (landing / "orders" / "orders_20210905.csv").symlink_to(landing / "missing.csv")
    (landing / ".hidden").mkdir()
    (landing / ".hidden" / "orders_20210906.csv").write_text("kept out of the count")
    home = landing / "home"  # a home inside the landing folder is not part of it
    home.mkdir()
    (home / "warehouse.duckdb").write_text("")
    entries = loader.record_strays(con, landing, list(ENTITIES), LOADED_AT, skip=home)
    found = {entry.file_name: entry.reason for entry in entries}
    assert {entry.entity for entry in entries} == {"landing"}
    assert {entry.status for entry in entries} == {"rejected"}
    assert sorted(found) == [
        "Orders/o.csv",
        "orders/2021/orders_20210904.csv",
        "orders/orders_20210905.csv",
        "orders_20210903.csv",
        "products/products_20210902.csv",
    ]
    assert found["orders_20210903.csv"].startswith("not in an export folder")
    assert "move it to orders/" in found["orders_20210903.csv"]
    assert "move it to orders/" in found["Orders/o.csv"]
    assert "in a folder inside orders/" in found["orders/2021/orders_20210904.csv"]
    assert "broken link" in found["orders/orders_20210905.csv"]
    assert "move it" not in found["products/products_20210902.csv"]
    assert loader.record_strays(con, landing, list(ENTITIES), LOADED_AT, skip=home) == []
    # Moved where it belongs, a file loads (it is no duplicate of a file recorded astray).
    (landing / "orders_20210903.csv").rename(landing / "orders" / "orders_20210903.csv")
    entries = ingest(con, landing)
    assert [(entry.file_name, entry.status) for entry in entries] == [
        ("orders_20210902.csv", "published"),
        ("orders_20210903.csv", "published"),
    ]


def test_a_file_name_that_is_not_utf8_is_recorded_with_what_to_do(con, tmp_path):
    """Names from an archive unpacked with another encoding (GBK bytes of 订单): DuckDB and
    the ledger take text only, and such a name stopped the ingest of every export."""
    landing = tmp_path / "landing"
    good = write_export(landing, "orders", "orders_20210902.csv", [order()])
    odd = os.fsdecode(b"orders_20210903_\xb6\xa9\xb5\xa5.csv")
    (landing / "orders" / odd).write_bytes(good.read_bytes())
    (landing / odd).write_bytes(good.read_bytes())
    [loaded] = ingest(con, landing)
    assert loaded.file_name == "orders_20210902.csv"
    entries = loader.record_strays(con, landing, list(ENTITIES), LOADED_AT)
    found = {entry.file_name: entry.reason for entry in entries}
    assert sorted(found) == [
        "orders/orders_20210903_\\xb6\\xa9\\xb5\\xa5.csv",
        "orders_20210903_\\xb6\\xa9\\xb5\\xa5.csv",
    ]
    assert "not UTF-8 text" in found["orders/orders_20210903_\\xb6\\xa9\\xb5\\xa5.csv"]
    assert loader.record_strays(con, landing, list(ENTITIES), LOADED_AT) == []


def test_a_file_or_folder_that_cannot_be_read_is_rejected_alone(con, tmp_path, monkeypatch):
    """Permissions (which root, running the tests, does not meet) or an I/O error: the file is
    rejected with why, the others load, and a folder that cannot be listed is recorded."""
    landing = tmp_path / "landing"
    write_export(landing, "orders", "orders_20210902.csv", [order()])
    locked = write_export(landing, "orders", "orders_20210903.csv", [order("1000000003")])
    (landing / "orders" / "2021").mkdir()
    scan, walk = loader.scan, os.walk

    def refused(path):
        if path == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return scan(path)

    def walk_refused(top, onerror=None, **kwargs):
        if Path(top).name == "2021":
            onerror(PermissionError(13, "Permission denied", str(top)))
            return iter(())
        return walk(top, onerror=onerror, **kwargs)

    monkeypatch.setattr(loader, "scan", refused)
    monkeypatch.setattr(os, "walk", walk_refused)
    entries = ingest(con, landing)
    assert [(e.file_name, e.status, e.reason) for e in entries] == [
        ("orders_20210902.csv", "published", ""),
        (
            "orders_20210903.csv",
            "rejected",
            "the file cannot be read (Permission denied); the file stays in the landing folder",
        ),
    ]
    [stray] = loader.record_strays(con, landing, list(ENTITIES), LOADED_AT)
    assert stray.file_name == "orders/2021" and "cannot be read" in stray.reason
    assert ingest(con, landing) == []  # recorded once
    monkeypatch.setattr(loader, "scan", scan)
    monkeypatch.setattr(loader, "cached_digests", lambda *_: {})
    [readable] = ingest(con, landing)  # once it can be read, it loads
    assert (readable.file_name, readable.status) == ("orders_20210903.csv", "published")


def test_rows_the_reader_sets_aside_say_what_to_fix(con, tmp_path):
    rows = [order(f"1{index:09d}", item_name="a,b") for index in range(600)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b'"a,b"', '"龙"井"'.encode())  # a quote not doubled
    lines[597] = lines[597].replace("露露".encode(), b"\xff\xfe")  # past the encoding's sample
    path.write_bytes(b"\n".join(lines))
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.encoding, entry.rows_read, entry.rows_quarantined) == ("utf-8", 600, 2)
    assert quarantined(con) == [
        (3, 'bad quoting: a quote inside a quoted field must be doubled ("")'),
        (597, "bytes that are not UTF-8 text (the file mixes encodings?)"),
    ]


def test_a_malformed_rows_masked_record_keeps_no_address_in_any_language(con, tmp_path):
    row = order("1000000001", receiver_address="Unit 5 Harbour View Tower, Kowloon")
    fields = [row[name] for name in ORDERS.column_names]
    fields.insert(4, "an extra field")  # the address moves off its position
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow(fields)
    write_export(
        tmp_path,
        "orders",
        "orders_20210902.csv",
        [order("1000000002")],
        extra_lines=[line.getvalue()],
    )
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert entry.rows_quarantined == 1
    [(masked,)] = con.execute("select raw_record_masked from quality.quarantine").fetchall()
    assert "Harbour" not in masked and "13812345678" not in masked
    assert "138****5678" in masked and "1000000001" in masked


@pytest.mark.parametrize(
    ("header_end", "row_end", "encoding", "quoting"),
    [
        ("\n", "\r\n", "utf-8", csv.QUOTE_MINIMAL),
        ("\r\n", "\r", "utf-8", csv.QUOTE_MINIMAL),
        ("\r\n", "\n", "gb18030", csv.QUOTE_MINIMAL),
        ("\n", "\r\n", "utf-8", csv.QUOTE_ALL),
        ("\r\n", "\n", "utf-8", csv.QUOTE_ALL),
        ("\n", "\r", "utf-8", csv.QUOTE_ALL),
    ],
    ids=[
        "lf-then-crlf",
        "crlf-then-cr",
        "gb18030-crlf-then-lf",
        "quoted-lf-then-crlf",
        "quoted-crlf-then-lf",
        "quoted-lf-then-cr",
    ],
)
def test_a_file_mixing_line_ends_loads_with_its_row_numbers(
    con, tmp_path, header_end, row_end, encoding, quoting
):
    """A header saved apart from its rows can end its line another way. DuckDB's reader
    fails such a file ("state machine reached an invalid state"), or, with every field
    quoted, sets every row aside (a closing quote followed by a CR it does not take for a
    line end); either way it is read as a copy with LF line ends."""
    # A line end in a value, quoted (Python's writer quotes a LF only with every field).
    store = "露露\n茶叶" if quoting == csv.QUOTE_ALL else "露露茶叶"
    rows = [order(f"10000001{index:02d}", store_name=store) for index in range(4)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows, encoding=encoding)
    header = path.read_bytes().decode(encoding).split("\n", 1)[0].rstrip("\r")
    records = io.StringIO()
    writer = csv.writer(records, lineterminator=row_end, quoting=quoting)
    fields = [[row.get(name, "") for name in ORDERS.column_names] for row in rows]
    fields[2] = ["1000000999", "S001"]  # data row 3: too few fields
    writer.writerows(fields)
    path.write_bytes((header + header_end + records.getvalue()).encode(encoding))
    [entry] = ingest(con, tmp_path, threshold=1.0)
    assert (entry.status, entry.rows_read, entry.rows_loaded) == ("published", 4, 3), entry
    assert quarantined(con) == [(3, "wrong field count: expected 21 fields, found 2")]
    assert [row[:3] for row in raw_orders(con)] == [
        ("1000000100", 1, store),
        ("1000000101", 2, store),
        ("1000000103", 4, store),
    ]
    assert list((tmp_path / "tmp").glob("*")) == []  # its copy is gone


@pytest.mark.parametrize("others", [0, 4])
def test_a_file_cut_inside_a_quoted_field_sets_its_last_row_aside(con, tmp_path, others, reads):
    """A half-copied file can end inside a quoted value. Read in one scan with four other
    files, DuckDB 1.5 dropped that last row and said nothing: neither loaded nor set aside."""
    for number in range(others):
        rows = [order(f"20000{number}0001"), order(f"20000{number}0002")]
        write_export(tmp_path, "orders", f"orders_20210901_{number}.csv", rows)
    rows = [order(f"10000001{index:02d}") for index in range(40)]
    path = write_export(tmp_path, "orders", "orders_20210902.csv", rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write('1000000999,S001,露露茶叶,91000101,B9,13800138000,"浙江省杭州市西湖区文三\n')
    *_, entry = ingest(con, tmp_path)
    assert (entry.rows_read, entry.rows_loaded, entry.rows_quarantined) == (41, 40, 1)
    [(number, reason, masked)] = con.execute(
        "select row_number, reason, raw_record_masked from quality.quarantine where file_name = ?",
        [entry.file_name],
    ).fetchall()
    assert (number, reason) == (41, loader.CUT_SHORT)
    assert json.loads(masked)["fields"][4:] == ["B9", "138****8000", None]
