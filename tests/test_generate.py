"""The sample-export generator: deterministic, varied as EXPORTS.md says, dirty on demand."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from dagster_project.defs.ingest.contract import (
    BOOLEAN,
    DATE,
    DIGITS,
    ENTITIES,
    ENUM,
    INTEGER,
    MONEY,
    TIMESTAMP,
    Entity,
)
from dagster_project.sample_data import GenerateSummary, generate

SCALE = 0.02
FILE_NAME = re.compile(r"^(?P<entity>[a-z]+)_(?P<date>\d{8})(?:_.*)?\.csv$")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M")
DATE_FORMATS = ("%Y-%m-%d", "%Y%m%d")
BOOLEANS = {"是", "否", "true", "false", "1", "0", "Y", "N"}
EXTRA_COLUMNS = {"remark", "备注"}
SEED_STORES = {"S001", "S002", "S003", "S004", "S005", "S006", "S007"}


def read_export(path: Path) -> tuple[str, str, list[list[str]]]:
    """(encoding, line ending, rows with the header first) of a landed export."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        encoding, text = "utf-8-sig", data.decode("utf-8-sig")
    else:
        try:
            encoding, text = "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            encoding, text = "gb18030", data.decode("gb18030")
    newline = "crlf" if b"\r\n" in data else "lf"
    return encoding, newline, list(csv.reader(io.StringIO(text, newline="")))


def header_language(entity: Entity, header: list[str]) -> str | None:
    names = {name.strip() for name in header} - EXTRA_COLUMNS
    if names == {column.name for column in entity.columns}:
        return "en"
    if names == {column.zh for column in entity.columns}:
        return "zh"
    return None


def records(entity: Entity, rows: list[list[str]]) -> list[dict[str, str]]:
    """Data rows keyed by the contract's English column names."""
    to_name = {column.zh: column.name for column in entity.columns}
    header = [to_name.get(name.strip(), name.strip()) for name in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def parse_time(text: str) -> datetime:
    for layout in TIME_FORMATS:
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    raise ValueError(f"not a time: {text!r}")


def parse_money(text: str) -> Decimal:
    return Decimal(text.removeprefix("¥").replace(",", ""))


def is_yes(text: str) -> bool:
    return text in {"是", "true", "1", "Y"}


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerateSummary]:
    out = tmp_path_factory.mktemp("landing")
    return out, generate(out, seed=7, scale=SCALE, dirty=True)


@pytest.fixture(scope="module")
def clean(landing: tuple[Path, GenerateSummary]) -> dict[str, dict[str, tuple]]:
    """entity -> file name -> (encoding, line ending, rows) for every clean export."""
    out, _ = landing
    result: dict[str, dict[str, tuple]] = {}
    for entity in ENTITIES:
        result[entity] = {
            path.name: read_export(path)
            for path in sorted((out / entity).iterdir())
            if "_dirty_" not in path.name
        }
    return result


@pytest.fixture(scope="module")
def current(clean: dict[str, dict[str, tuple]]) -> dict[str, dict[str, dict[str, str]]]:
    """The newest version of every order and refund key across the clean exports."""
    newest: dict[str, dict[str, dict[str, str]]] = {}
    for entity, key in (("orders", "order_id"), ("refunds", "refund_id")):
        versions: dict[str, dict[str, str]] = {}
        for name in sorted(clean[entity], key=lambda n: (n.split("_")[1], n)):
            for record in records(ENTITIES[entity], clean[entity][name][2]):
                known = versions.get(record[key])
                if known is None or parse_time(record["updated_at"]) >= parse_time(
                    known["updated_at"]
                ):
                    versions[record[key]] = record
        newest[entity] = versions
    return newest


def digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*.csv"))
    }


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(
    tmp_path: Path, landing: tuple[Path, GenerateSummary]
) -> None:
    out, _ = landing
    again = generate(tmp_path / "again", seed=7, scale=SCALE, dirty=True)
    assert digests(tmp_path / "again") == digests(out)
    assert again.rows == landing[1].rows

    other = tmp_path / "other"
    generate(other, seed=8, scale=SCALE)
    theirs, ours = digests(other), digests(out)
    common = set(theirs) & set(ours)  # tiny months of small stores may have no refunds
    assert len(common) > 0.8 * len(theirs)
    assert sum(theirs[name] != ours[name] for name in common) > 0.9 * len(common)


def test_layout_follows_the_file_contract(landing: tuple[Path, GenerateSummary]) -> None:
    out, summary = landing
    assert sorted(path.name for path in out.iterdir() if path.is_dir()) == sorted(ENTITIES)
    # At the top, only the dirty case of a file landed outside the export folders.
    top = [path.name for path in out.iterdir() if not path.is_dir()]
    assert top == [summary.dirty["misplaced"].file]
    for entity in ENTITIES:
        names = [path.name for path in (out / entity).iterdir()]
        assert names, entity
        for name in names:
            match = FILE_NAME.match(name)
            assert match and match["entity"] == entity, name
            datetime.strptime(match["date"], "%Y%m%d")
        clean = [name for name in names if "_dirty_" not in name]
        assert len(clean) == summary.files[entity]
    assert len(list((out / "orders").glob("orders_*_reexport.csv"))) > 0
    assert summary.first_month == date(2020, 12, 1)
    assert summary.last_month == date(2021, 11, 1)
    assert "orders" in str(summary) and "gate_blocked" in str(summary)


def test_row_counts_match_the_summary(
    landing: tuple[Path, GenerateSummary], clean: dict[str, dict[str, tuple]]
) -> None:
    _, summary = landing
    for entity, files in clean.items():
        assert sum(len(rows) - 1 for _, _, rows in files.values()) == summary.rows[entity]
    assert summary.rows["orders"] >= 0.9 * 50_000 * SCALE


def test_files_vary_as_real_exports_do(clean: dict[str, dict[str, tuple]]) -> None:
    languages, encodings, newlines, shuffled, extra = set(), set(), set(), 0, 0
    for entity, files in clean.items():
        contract_order = [column.name for column in ENTITIES[entity].columns]
        for _encoding, _newline, rows in files.values():
            encodings.add(_encoding)
            newlines.add(_newline)
            languages.add(header_language(ENTITIES[entity], rows[0]))
            to_name = {column.zh: column.name for column in ENTITIES[entity].columns}
            names = [to_name.get(n.strip(), n.strip()) for n in rows[0]]
            if [n for n in names if n in contract_order] != contract_order:
                shuffled += 1
            extra += any(name in EXTRA_COLUMNS for name in names)
    assert languages == {"en", "zh"}
    assert encodings == {"utf-8", "utf-8-sig", "gb18030"}
    assert newlines == {"lf", "crlf"}
    assert shuffled > 0 and extra > 0

    orders = [rows for _, _, rows in clean["orders"].values()]
    texts = "\n".join(",".join(row) for rows in orders for row in rows[1:])
    assert re.search(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", texts)  # slashes
    assert re.search(r",\d{4}-\d\d-\d\d \d\d:\d\d(,|$)", texts, re.M)  # no seconds
    assert "¥" in texts
    assert re.search(r"\d{3}\*{4}\d{4}", texts)  # masked phones
    records_ = [r for rows in orders for r in records(ENTITIES["orders"], rows)]
    assert {r["trust_card"] for r in records_} >= {"是", "否"}
    assert {r["trust_card"] for r in records_} & {"true", "1", "Y"}
    assert any("," in r["receiver_address"] for r in records_)
    assert any('"' in r["item_name"] for r in records_)


def test_every_clean_file_has_the_whole_contract_in_one_language(
    clean: dict[str, dict[str, tuple]],
) -> None:
    for entity, files in clean.items():
        for name, (_, _, rows) in files.items():
            assert header_language(ENTITIES[entity], rows[0]) in ("en", "zh"), name
            assert all(len(row) == len(rows[0]) for row in rows), name
            assert len(rows) > 1, name


def test_clean_values_follow_the_contract(clean: dict[str, dict[str, tuple]]) -> None:
    for entity_name, files in clean.items():
        entity = ENTITIES[entity_name]
        for name, (_, _, rows) in files.items():
            for record in records(entity, rows):
                for column in entity.columns:
                    value = record[column.name]
                    if value == "":
                        assert not column.required, (name, column.name)
                        continue
                    if column.kind == ENUM:
                        assert value in column.values, (name, column.name, value)
                    elif column.kind == DIGITS:
                        assert re.fullmatch(r"\d{10,20}", value), (name, value)
                    elif column.kind == INTEGER:
                        number = int(value)
                        assert column.min_value is None or number >= column.min_value
                        assert column.max_value is None or number <= column.max_value
                    elif column.kind == MONEY:
                        assert parse_money(value) >= 0, (name, column.name, value)
                    elif column.kind == TIMESTAMP:
                        parse_time(value)
                    elif column.kind == DATE:
                        assert any(_parses(value, layout) for layout in DATE_FORMATS)
                    elif column.kind == BOOLEAN:
                        assert value in BOOLEANS, (name, value)


def _parses(text: str, layout: str) -> bool:
    try:
        datetime.strptime(text, layout)
    except ValueError:
        return False
    return True


def test_orders_look_like_the_mission(current: dict[str, dict[str, dict[str, str]]]) -> None:
    orders = list(current["orders"].values())
    for order in orders:
        assert (order["live_session_id"] != "") == (order["channel"] == "直播"), order
        assert order["store_id"] in SEED_STORES
        if order["order_status"] == "待付款":
            assert order["paid_at"] == ""
        elif order["order_status"] != "已关闭":
            assert order["paid_at"] != ""
        assert 16 <= len(order["order_id"]) <= 19
        assert re.fullmatch(r"\d{11}|\d{3}\*{4}\d{4}", order["receiver_phone"])
    live = sum(order["channel"] == "直播" for order in orders) / len(orders)
    cards = sum(is_yes(order["trust_card"]) for order in orders) / len(orders)
    assert 0.6 < live < 0.95
    assert 0.93 < cards < 1.0
    assert any(order["order_status"] == "待付款" for order in orders)


def test_refunds_respect_store_policies(
    current: dict[str, dict[str, dict[str, str]]],
) -> None:
    stores = {
        row["store_id"]: row
        for row in csv.DictReader(
            (Path(__file__).resolve().parents[1] / "seeds" / "stores.csv").open(encoding="utf-8")
        )
    }
    orders = current["orders"]
    refunds = list(current["refunds"].values())
    assert refunds
    for refund in refunds:
        order = orders.get(refund["order_id"])
        if order is None:
            continue  # refunds may arrive before their order
        store = stores[refund["store_id"]]
        paid = parse_time(order["paid_at"])
        assert parse_money(refund["refund_amount"]) <= parse_money(order["paid_amount"])
        if refund["refund_type"] == "退款不退货":
            enabled = store["refund_without_return_enabled_date"]
            assert enabled and paid.date() >= date.fromisoformat(enabled), refund
        if parse_money(refund["shipping_subsidy"]) > 0:
            enabled = store["shipping_subsidy_enabled_date"]
            assert refund["refund_type"] == "退货退款"
            assert enabled and paid.date() >= date.fromisoformat(enabled), refund
        if refund["resolved_at"]:
            assert parse_time(refund["resolved_at"]) >= parse_time(refund["requested_at"])


def test_violations_spare_the_zero_violation_store(clean: dict[str, dict[str, tuple]]) -> None:
    stores = {
        record["store_id"]
        for _, _, rows in clean["violations"].values()
        for record in records(ENTITIES["violations"], rows)
    }
    assert "S004" not in stores
    assert stores <= SEED_STORES


def test_fans_are_mostly_buyers(
    clean: dict[str, dict[str, tuple]], current: dict[str, dict[str, dict[str, str]]]
) -> None:
    buyers = {(order["store_id"], order["buyer_id"]) for order in current["orders"].values()}
    fans = {
        (record["store_id"], record["fan_id"])
        for _, _, rows in clean["fans"].values()
        for record in records(ENTITIES["fans"], rows)
    }
    assert len(fans & buyers) > 0.5 * len(fans)


EXPECTED_CASES = {
    "missing_key": "published",
    "missing_required": "published",
    "bad_time": "published",
    "bad_number": "published",
    "negative_amount": "published",
    "unknown_enum": "published",
    "too_many_fields": "published",
    "too_few_fields": "published",
    "scientific_order_id": "published",
    "gate_blocked": "blocked",
    "utf16_no_bom": "rejected",
    "binary": "rejected",
    "no_header": "rejected",
    "empty": "rejected",
    "missing_required_column": "rejected",
    "same_bytes": "duplicate",
    "misplaced": "rejected",
    "extra_column": "published",
    "orphan_refund": "published",
    "unknown_store_violations": "published",
    "unknown_store_fans": "published",
}


def test_dirty_writes_every_bad_input_case(landing: tuple[Path, GenerateSummary]) -> None:
    out, summary = landing
    assert {name: case.expect for name, case in summary.dirty.items()} == EXPECTED_CASES
    for case in summary.dirty.values():
        path = out / case.file
        assert path.is_file() and "_dirty_" in path.name, case
        assert FILE_NAME.match(path.name)["entity"] == case.entity
        assert case.what
        if case.expect in ("published", "blocked"):
            _, _, rows = read_export(path)
            assert len(rows) - 1 == case.data_rows, case
            share = case.bad_rows / case.data_rows
            assert (share > 0.05) == (case.expect == "blocked"), case
    cases = summary.dirty
    assert (out / cases["empty"].file).stat().st_size == 0
    for name in ("utf16_no_bom", "binary"):
        data = (out / cases[name].file).read_bytes()
        for encoding in ("utf-8", "gb18030"):
            with pytest.raises(UnicodeDecodeError):
                data.decode(encoding)
    duplicate = (out / cases["same_bytes"].file).read_bytes()
    originals = [path for path in (out / "orders").iterdir() if path.read_bytes() == duplicate]
    assert len(originals) == 2
    _, _, rows = read_export(out / cases["missing_required_column"].file)
    assert header_language(ENTITIES["orders"], rows[0]) is None
    assert not {"buyer_id", "买家ID"} & {name.strip() for name in rows[0]}
    _, _, rows = read_export(out / cases["scientific_order_id"].file)
    assert any("2.02111E+18" in row for row in rows)
    _, _, rows = read_export(out / cases["too_many_fields"].file)
    assert {len(row) for row in rows} == {len(rows[0]), len(rows[0]) + 1}
    _, _, rows = read_export(out / cases["unknown_store_violations"].file)
    assert any("S999" in row for row in rows)


def test_clean_run_writes_no_dirty_files(tmp_path: Path) -> None:
    summary = generate(tmp_path, scale=0.005, months=3)
    assert summary.dirty == {}
    assert not list(tmp_path.rglob("*_dirty_*"))
    assert summary.first_month == date(2021, 9, 1)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]
