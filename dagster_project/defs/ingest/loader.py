"""Loading landed export files into the raw layer: one file, one transaction, one ledger row.

Every data row ends up either in `raw.<entity>` or in `quality.quarantine` with a reason;
every file gets a ledger row (published, blocked, rejected or duplicate) with a reason.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from ..quality.gate import DUPLICATE, REJECTED, quarantine_verdict
from .contract import Entity
from .files import (
    RejectedFile,
    detect_encoding,
    export_date,
    landed_files,
    map_header,
    read_header_line,
    sha256,
    transcode_to_utf8,
)
from .parsing import parse_select, raw_record_sql
from .tables import LEDGER_COLUMNS, raw_columns

ADDRESS_HINT = re.compile(r"[省市区县镇村路街道号楼室]")
PHONE_SHAPE = re.compile(r"^\s*(1\d{2})\d{4}(\d{4})\s*$")


@dataclass
class LedgerEntry:
    load_id: str
    entity: str
    file_name: str
    file_sha256: str
    export_date: date | None
    status: str
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    reason: str = ""
    loaded_at: datetime | None = None
    encoding: str | None = None
    header_language: str | None = None
    extra_columns: str | None = None
    missing_columns: str | None = None


def make_load_id(file_name: str, digest: str) -> str:
    """Readable and deterministic: the file's stem and the start of its content hash."""
    return f"{Path(file_name).stem}-{digest[:10]}"


def insert_ledger(con: duckdb.DuckDBPyConnection, entry: LedgerEntry) -> None:
    values = asdict(entry)
    names = list(LEDGER_COLUMNS)
    con.execute(
        f"insert into quality.load_ledger ({', '.join(names)}) "
        f"values ({', '.join('?' for _ in names)})",
        [values[name] for name in names],
    )


def ingest_entity(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    folder: Path,
    temp_dir: Path,
    loaded_at: datetime,
    quarantine_threshold: float,
) -> list[LedgerEntry]:
    """Load every file of the entity's landing folder not loaded before; return the new
    ledger rows. The same file seen again (same name and bytes) is skipped silently: it is
    already accounted for."""
    seen = con.execute(
        "select file_name, file_sha256, load_id from quality.load_ledger where entity = ?",
        [entity.name],
    ).fetchall()
    known = {(name, digest) for name, digest, _ in seen}
    by_digest = {digest: (load_id, name) for name, digest, load_id in seen}
    entries = []
    for path in landed_files(folder):
        digest = sha256(path)
        if (path.name, digest) in known:
            continue
        entry = LedgerEntry(
            load_id=make_load_id(path.name, digest),
            entity=entity.name,
            file_name=path.name,
            file_sha256=digest,
            export_date=None,
            status=REJECTED,
            loaded_at=loaded_at,
        )
        if digest in by_digest:
            earlier_id, earlier_name = by_digest[digest]
            with contextlib.suppress(RejectedFile):
                entry.export_date = export_date(entity, path)
            entry.status = DUPLICATE
            entry.reason = f"same bytes as {earlier_name} (load {earlier_id}): loaded once"
            insert_ledger(con, entry)
        else:
            load_file(con, entity, path, entry, temp_dir, quarantine_threshold)
            by_digest[digest] = (entry.load_id, path.name)
        known.add((path.name, digest))
        entries.append(entry)
    return entries


def load_file(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    path: Path,
    entry: LedgerEntry,
    temp_dir: Path,
    quarantine_threshold: float,
) -> None:
    """Load one file in one transaction and record it in the ledger; never raises for a bad
    file (the ledger row says why it was rejected)."""
    readable = path
    try:
        entry.export_date = export_date(entity, path)
        entry.encoding = detect_encoding(path)
        header = map_header(entity, read_header_line(path, entry.encoding))
        entry.header_language = header.language
        entry.extra_columns = ", ".join(header.extra) or None
        entry.missing_columns = ", ".join(header.missing) or None
        if entry.encoding == "gb18030":
            temp_dir.mkdir(parents=True, exist_ok=True)
            readable = temp_dir / f"{entry.load_id}.utf8.csv"
            transcode_to_utf8(path, readable, entry.encoding)
        _read(con, readable, len(header.columns))
        con.execute("begin transaction")
        try:
            _store(con, entity, entry, header.columns, quarantine_threshold)
            insert_ledger(con, entry)
            _record_gate_check(con, entry, quarantine_threshold)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    except RejectedFile as error:
        _reject(con, entry, str(error))
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0]
        _reject(con, entry, f"the CSV reader could not read the file: {first_line}")
    finally:
        if readable != path:
            readable.unlink(missing_ok=True)


def _record_gate_check(
    con: duckdb.DuckDBPyConnection, entry: LedgerEntry, threshold: float
) -> None:
    share = entry.rows_quarantined / entry.rows_read if entry.rows_read else 0.0
    con.execute(
        "insert into quality.check_results values (?, 'quarantine_share', 'error', ?, ?, ?, ?)",
        [
            entry.load_id,
            share <= threshold,
            share,
            f"{entry.rows_quarantined} of {entry.rows_read} rows quarantined; "
            f"threshold {threshold:.0%}",
            entry.loaded_at,
        ],
    )


def _reject(con: duckdb.DuckDBPyConnection, entry: LedgerEntry, reason: str) -> None:
    entry.status = REJECTED
    entry.reason = reason + "; the file stays in the landing folder"
    entry.rows_read = entry.rows_loaded = entry.rows_quarantined = 0
    insert_ledger(con, entry)


def _read(con: duckdb.DuckDBPyConnection, path: Path, width: int) -> None:
    """Read the file's data rows as text with DuckDB; structurally broken rows (wrong field
    count, bad quoting, invalid UTF-8) go to the rejects table instead of failing the read."""
    columns = "{" + ", ".join(f"'_c{index}': 'VARCHAR'" for index in range(1, width + 1)) + "}"
    con.execute("drop table if exists _read_errors")
    con.execute("drop table if exists _read_scans")
    con.execute(
        f"""
        create or replace temp table _read as
        select * from read_csv(
            ?, header = false, skip = 1, auto_detect = false, columns = {columns},
            delim = ',', quote = '"', escape = '"', strict_mode = true,
            store_rejects = true, rejects_table = '_read_errors', rejects_scan = '_read_scans'
        )
        """,
        [str(path)],
    )


def _structural_rejects(
    con: duckdb.DuckDBPyConnection, path_for_positions: Path, width: int
) -> list[tuple[int, str, str]]:
    """(data row number, reason, raw line) of each row DuckDB's reader set aside."""
    rows = con.execute(
        """
        select
            line,
            min(byte_position) as byte_position,
            arg_min(cast(error_type as varchar), column_idx) as error_type,
            arg_min(error_message, column_idx) as error_message,
            any_value(csv_line) as csv_line
        from _read_errors
        group by line
        order by line
        """
    ).fetchall()
    if not rows:
        return []
    blanks = _blank_line_offsets(path_for_positions, max(row[1] for row in rows))
    rejects = []
    for line, position, error_type, message, csv_line in rows:
        text = (csv_line or "").strip("\r\n")
        if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            found = len(next(csv.reader([text]), []))
            reason = f"wrong field count: expected {width} fields, found {found}"
        else:
            reason = f"{error_type.lower()}: {_clean(message)}"
        # `line` counts the header and blank lines; a data row number counts neither.
        rejects.append((line - 1 - bisect.bisect_left(blanks, position), reason, text))
    return rejects


def _clean(reason: str) -> str:
    return " ".join(reason.replace("\n", " ").split())


def _blank_line_offsets(path: Path, until: int) -> list[int]:
    offsets, position = [], 0
    with path.open("rb") as handle:
        for line in handle:
            if position > until:
                break
            if not line.strip(b"\r\n"):
                offsets.append(position)
            position += len(line)
    return offsets


def _store(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    entry: LedgerEntry,
    columns: list[str],
    quarantine_threshold: float,
) -> None:
    file_path = con.execute("select any_value(file_path) from _read_scans").fetchone()
    rejects = (
        _structural_rejects(con, Path(file_path[0]), len(columns))
        if file_path and file_path[0]
        else []
    )
    con.execute("create or replace temp table _rejected (r bigint, j bigint)")
    if rejects:
        con.executemany(
            "insert into _rejected values (?, ?)",
            [(number, rank) for rank, (number, _, _) in enumerate(rejects, start=1)],
        )
    # A good row's number is its ordinal among good rows, shifted past the rejected rows
    # before it: the as-of join finds how many rejected rows precede each good row.
    con.execute(
        """
        create or replace temp table _numbered as
        select _read.*, _read.rowid + 1 + coalesce(shift.j, 0) as _row_number
        from _read
        asof left join (select r - j as t, max(j) as j from _rejected group by r - j) as shift
            on _read.rowid + 1 > shift.t
        """
    )
    con.execute(
        f"create or replace temp table _parsed as {parse_select(entity, columns, '_numbered')}"
    )
    lineage = [entry.load_id, entry.file_name, entry.export_date, entry.loaded_at]
    names = list(raw_columns(entity))
    contract = [column.name for column in entity.columns]
    con.execute(
        f"insert into raw.{entity.name} ({', '.join(names)}) "
        f"select {', '.join(contract)}, ?, ?, ?, _row_number, ?, _extra "
        "from _parsed where _reason is null",
        lineage,
    )
    con.execute(
        "insert into quality.quarantine "
        f"select ?, ?, ?, _row_number, _reason, {raw_record_sql(entity, columns, masked=False)}, "
        f"{raw_record_sql(entity, columns, masked=True)} from _parsed where _reason is not null",
        [entry.load_id, entity.name, entry.file_name],
    )
    personal = [i for i, name in enumerate(columns) if name in _personal_names(entity)]
    if rejects:
        con.executemany(
            "insert into quality.quarantine values (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    entry.load_id,
                    entity.name,
                    entry.file_name,
                    number,
                    reason,
                    json.dumps({"csv_line": line}, ensure_ascii=False),
                    json.dumps({"fields": _mask_fields(line, personal)}, ensure_ascii=False),
                )
                for number, reason, line in rejects
            ],
        )
    good, rule_bad = con.execute(
        "select count(*) filter (_reason is null), count(*) filter (_reason is not null) "
        "from _parsed"
    ).fetchone()
    entry.rows_loaded = good
    entry.rows_quarantined = rule_bad + len(rejects)
    entry.rows_read = entry.rows_loaded + entry.rows_quarantined
    entry.status, entry.reason = quarantine_verdict(
        entry.rows_read, entry.rows_quarantined, quarantine_threshold
    )


def _personal_names(entity: Entity) -> set[str]:
    return {column.name for column in entity.columns if column.personal}


def _mask_fields(line: str, personal_positions: list[int]) -> list[str | None]:
    """The fields of a malformed row with anything personal masked or removed: its field
    count is wrong, so positions are a hint only and shapes decide too."""
    fields = next(csv.reader([line]), [])
    masked: list[str | None] = []
    for position, field in enumerate(fields):
        phone = PHONE_SHAPE.match(field)
        if phone:
            masked.append(f"{phone[1]}****{phone[2]}")
        elif position in personal_positions or (len(field) >= 6 and ADDRESS_HINT.search(field)):
            masked.append(None)
        else:
            masked.append(field)
    return masked
