"""Loading landed export files into the raw layer: one transaction per entity and run, one
ledger row per file.

Every data row ends up either in `raw.<entity>` or in `quality.quarantine` with a reason;
every file gets a ledger row (published, blocked, rejected or duplicate) with a reason.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import io
import itertools
import json
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb

from ..quality.gate import DUPLICATE, REJECTED, quarantine_verdict
from .contract import Entity
from .files import (
    LANDING,
    Contents,
    FileStat,
    Header,
    RejectedFile,
    cached_digests,
    detect_encoding,
    export_date,
    known_digest,
    landed_files,
    map_header,
    read_header_line,
    recorded_strays,
    remember_digests,
    scan,
    sha256,
    stray_files,
    transcode_to_utf8,
    with_one_line_end,
)
from .parsing import parse_select
from .tables import LEDGER_COLUMNS, insert_rows, raw_columns

ADDRESS_HINT = re.compile(r"[省市区县镇村路街道号楼室]")
PHONE_SHAPE = re.compile(r"^\s*(1\d{2})\d{4}(\d{4})\s*$")
FREE_TEXT = re.compile(r"[\s,，]")
HASH_THREADS = 4
GLOB_CHARACTER = re.compile(r"([*?\[])")
# DuckDB's reader sets aside a line longer than its `max_line_size` (2 MB by default) with this
# reason; such a file is read again with lines up to LONG_LINE_BYTES, in a buffer of that size
# (by default DuckDB's buffer is 16 times the line size: 1 GiB for these lines).
LINE_TOO_LONG = "line size over maximum"
# What DuckDB's reasons for a row it set aside mean, said for the person who fixes the file.
READER_REASONS = {
    "UNQUOTED VALUE": 'bad quoting: a quote inside a quoted field must be doubled ("")',
    "INVALID ENCODING": "bytes that are not UTF-8 text (the file mixes encodings?)",
    "INVALID UNICODE": "bytes that are not UTF-8 text (the file mixes encodings?)",
}
# The last row of a file cut short inside a quoted value (a half-copied file).
CUT_SHORT = "bad quoting: a quoted value is not closed before the end of the file (cut short?)"
LONG_LINE_BYTES = 1 << 26
# Python's CSV reader (the rows set aside, and a file's records) takes fields of any line read.
csv.field_size_limit(LONG_LINE_BYTES)


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


def make_load_id(entity: str, file_name: str, digest: str) -> str:
    """Readable, deterministic and unique: the file's name without its extension, and the
    start of a hash of where it landed (folder and whole name) and of its bytes. The same
    bytes under names that differ only in their extension (`x.CSV`, `x.txt`), or in two
    folders, are two loads with two ids."""
    where = hashlib.sha256(f"{entity}/{file_name}\n{digest}".encode()).hexdigest()
    return f"{Path(file_name).stem}-{where[:10]}"


def insert_ledger(con: duckdb.DuckDBPyConnection, entry: LedgerEntry) -> None:
    values = asdict(entry)
    names = list(LEDGER_COLUMNS)
    con.execute(
        f"insert into quality.load_ledger ({', '.join(names)}) "
        f"values ({', '.join('?' for _ in names)})",
        [values[name] for name in names],
    )


@dataclass
class _Landed:
    """A file that passed the envelope checks and is ready for DuckDB to read."""

    entry: LedgerEntry
    path: Path  # what DuckDB reads: the landed file, or its UTF-8 transcode
    header: Header
    contents: Contents  # a NUL byte (its rows are checked for one), an open quote
    unread: bool = False  # read in a batch, then rejected when read again alone


@dataclass
class _Reject:
    """A row DuckDB's reader set aside (wrong field count, bad quoting, invalid UTF-8)."""

    file: int  # the file's number among the entity's parsed files (its rows' `_file`)
    number: int  # data row number in the file
    reason: str
    raw_record: str  # JSON, as quarantine keeps it
    raw_record_masked: str


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
        "select file_name, file_sha256, load_id, status from quality.load_ledger where entity = ?",
        [entity.name],
    ).fetchall()
    known = {(name, digest) for name, digest, _, _ in seen}
    # A rejected file loaded nothing: its bytes under another name (renamed as its reason
    # asks, or landed as `x.csv.part` and then renamed) are read, not taken as loaded.
    by_digest = {
        digest: (load_id, name) for name, digest, load_id, status in seen if status != REJECTED
    }
    cached = cached_digests(con, entity)
    entries: list[LedgerEntry] = []
    # Recorded with the loads: a file taken as loaded once must never outlive a load that
    # did not get stored.
    duplicates: list[LedgerEntry] = []
    readable: list[_Landed] = []
    try:
        digests, hashed, contents = _digests(landed_files(folder), cached)
        for path, digest in digests.items():
            if (path.name, digest) in known:
                continue
            known.add((path.name, digest))
            entry = LedgerEntry(
                load_id=make_load_id(entity.name, path.name, digest),
                entity=entity.name,
                file_name=path.name,
                file_sha256=digest,
                export_date=None,
                status=REJECTED,
                loaded_at=loaded_at,
            )
            entries.append(entry)
            found = contents.get(path)
            if isinstance(found, OSError):
                _reject(con, entry, f"the file cannot be read ({found.strerror})")
                continue
            if digest in by_digest:
                earlier_id, earlier_name = by_digest[digest]
                with contextlib.suppress(RejectedFile):
                    entry.export_date = export_date(entity, path)
                entry.status = DUPLICATE
                entry.reason = f"same bytes as {earlier_name} (load {earlier_id}): loaded once"
                duplicates.append(entry)
                continue
            by_digest[digest] = (entry.load_id, path.name)
            try:
                readable.append(_open(entity, path, entry, temp_dir, found))
            except RejectedFile as error:
                del by_digest[digest]
                _reject(con, entry, str(error))
        # Files with the same header layout are read by one DuckDB scan: per-file statements
        # cost more than the parsing itself on small exports. Every layout's rows go to one
        # temp table and are stored in one transaction: a commit per layout wrote the rows of
        # small files twice, to the WAL and again at the checkpoint.
        batches: dict[tuple[str, ...], list[_Landed]] = {}
        for landed in readable:
            batches.setdefault((*landed.header.columns, landed.contents.nul), []).append(landed)
        parsed: list[_Landed] = []
        rejects: list[_Reject] = []
        for batch in batches.values():
            _parse_batch(con, entity, batch, parsed, rejects, temp_dir)
        con.execute("begin transaction")
        try:
            if parsed:
                _store(con, entity, parsed, rejects, quarantine_threshold)
            for entry in duplicates:
                insert_ledger(con, entry)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        _supersede(con, entries)
        remember_digests(con, entity, hashed)
    finally:
        con.execute("drop table if exists _parsed")
        for landed in readable:
            if landed.path.parent == temp_dir:
                landed.path.unlink(missing_ok=True)
    return entries


def record_strays(
    con: duckdb.DuckDBPyConnection,
    landing: Path,
    entities: list[str],
    loaded_at: datetime,
    skip: Path | None = None,
) -> list[LedgerEntry]:
    """Record each file of the landing folder that no export folder's reading takes up
    (`stray_files`) as rejected, with where it belongs; once, by its path in the landing
    folder. Return the new ledger rows."""
    strays = stray_files(landing, entities, skip)
    if not strays:
        return []
    known = recorded_strays(con)
    entries = []
    for stray in strays:
        if stray.name in known:
            continue
        digest = ""
        if stray.path.is_file():
            with contextlib.suppress(OSError):  # unreadable: recorded without its digest
                digest = sha256(stray.path)
        entry = LedgerEntry(
            load_id=f"{LANDING}-{make_load_id(LANDING, stray.name, digest)}",
            entity=LANDING,
            file_name=stray.name,
            file_sha256=digest,
            export_date=None,
            status=REJECTED,
            loaded_at=loaded_at,
        )
        _reject(con, entry, stray.reason)
        entries.append(entry)
    return entries


def _digests(
    paths: list[Path], cached: dict[str, tuple[FileStat, str]]
) -> tuple[dict[Path, str], dict[str, tuple[FileStat, str]], dict[Path, Contents | OSError]]:
    """Each file's SHA-256, those read again now (by name, with the size and time they had
    before they were read), and what the loader must know of those files' bytes (or why a
    file could not be read; its digest is then empty, until it can be read). A file
    whose size and time are unchanged keeps its last digest. hashlib releases the GIL on
    large reads, so the others are hashed on several threads at once (5.1 → 2.1 s for the
    5.5 GB of a 10M landing). Each file is stat-ed once, before it is read: a file rewritten
    while it is hashed is read again next time."""
    stats = {path: FileStat.of(path) for path in paths}
    digests = {path: known_digest(path.name, stat, cached) for path, stat in stats.items()}
    unknown = [path for path, digest in digests.items() if digest is None]
    hashed: dict[str, tuple[FileStat, str]] = {}
    contents: dict[Path, Contents] = {}
    if unknown:
        with ThreadPoolExecutor(max_workers=HASH_THREADS) as pool:
            for path, scanned in zip(unknown, pool.map(_scan, unknown), strict=True):
                if isinstance(scanned, OSError):  # the empty digest: the file is not read
                    digests[path] = ""
                    contents[path] = scanned
                    continue
                digest, contents[path] = scanned
                digests[path] = digest
                hashed[path.name] = (stats[path], digest)
    return digests, hashed, contents


def _scan(path: Path) -> tuple[str, Contents] | OSError:
    try:
        return scan(path)
    except OSError as error:  # no permission to read it, an I/O error
        return error


def _supersede(con: duckdb.DuckDBPyConnection, entries: list[LedgerEntry]) -> None:
    """A new file under the name of a still-blocked load supersedes it: the old load stays
    blocked (never published by accident), and its reason says which load replaced it."""
    blocked = {
        name
        for (name,) in con.execute(
            "select file_name from quality.load_ledger where entity = ? and status = 'blocked'",
            [entries[0].entity if entries else ""],
        ).fetchall()
    }
    for entry in entries:
        if entry.status == DUPLICATE or entry.file_name not in blocked:
            continue
        con.execute(
            "update quality.load_ledger set reason = reason || '; superseded by ' || ? "
            "where entity = ? and file_name = ? and status = 'blocked' and load_id != ? "
            "and reason not like '%; superseded by %'",
            [entry.load_id, entry.entity, entry.file_name, entry.load_id],
        )


def _open(
    entity: Entity, path: Path, entry: LedgerEntry, temp_dir: Path, contents: Contents | None
) -> _Landed:
    """Check a file's name, encoding and header; GB18030 is transcoded for DuckDB.
    `contents`: what its bytes hold, None when it was not read in this run."""
    entry.export_date = export_date(entity, path)
    if contents is None:
        contents = scan(path)[1]
    entry.encoding = detect_encoding(path)
    header = map_header(entity, read_header_line(path, entry.encoding))
    entry.header_language = header.language
    entry.extra_columns = ", ".join(header.extra) or None
    entry.missing_columns = ", ".join(header.missing) or None
    if entry.encoding == "gb18030":
        temp_dir.mkdir(parents=True, exist_ok=True)
        utf8 = temp_dir / f"{entry.file_sha256[:16]}.utf8.csv"  # any name may be too long
        transcode_to_utf8(path, utf8, entry.encoding)
        return _Landed(entry, utf8, header, contents)
    return _Landed(entry, path, header, contents)


def _parse_batch(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    batch: list[_Landed],
    parsed: list[_Landed],
    rejects: list[_Reject],
    temp_dir: Path,
) -> None:
    """Add the rows of a batch of files of one header layout to `_parsed` (and the files to
    `parsed`, their set-aside rows to `rejects`); if DuckDB cannot read the batch, read its
    files one by one so only the unreadable file is rejected. A file DuckDB cannot read for
    mixing line ends is read again as a copy with one kind (`with_one_line_end`)."""
    columns, nul, first = batch[0].header.columns, batch[0].contents.nul, len(parsed)
    paths = [landed.path for landed in batch]
    try:
        _parse(con, entity, paths, columns, first=first, append=first > 0, nul=nul)
    except duckdb.Error as error:
        if len(batch) > 1:
            for landed in batch:
                _parse_batch(con, entity, [landed], parsed, rejects, temp_dir)
            return
        if _read_with_one_line_end(batch[0], temp_dir):
            _parse_batch(con, entity, batch, parsed, rejects, temp_dir)
            return
        # DuckDB 1.5 fails a whole file when a line over its maximum size has a multi-byte
        # character where it cuts the line (README, pitfalls): read it again with long lines.
        try:
            _parse(
                con,
                entity,
                paths,
                columns,
                first=first,
                append=first > 0,
                nul=nul,
                long_lines=True,
            )
        except duckdb.Error:
            first_line = str(error).strip().splitlines()[0]
            _reject(con, batch[0].entry, f"the CSV reader could not read the file: {first_line}")
            return
    parsed.extend(batch)
    numbers = {str(landed.path): first + offset for offset, landed in enumerate(batch)}
    lines: dict[str, _Lines] = {}  # each file with set-aside rows, scanned once
    found = _structural_rejects(con, entity, columns, numbers, lines)
    set_aside = Counter(reject.file for reject in found)
    # A file that may end inside a quoted value (an odd number of quotes) is checked for a
    # last record cut short: DuckDB 1.5 reads such a record as nothing, and says so only
    # when it reads that file alone on several threads (README, pitfalls).
    cut: dict[int, tuple[int, str]] = {}  # by file: the record's row number and text
    for number in numbers.values():
        path = parsed[number].path
        if parsed[number].contents.open_quote:
            if str(path) not in lines:
                lines[str(path)] = _Lines.of(path)
            if (text := _cut_record(path, lines[str(path)])) is not None:
                cut[number] = (lines[str(path)].rows, text)
    if not set_aside and not cut:
        return

    def set_aside_cut(number: int) -> _Reject | None:
        """The cut record of the file as the reader set it aside, if it did."""
        row = cut[number][0]
        return next((r for r in found if r.file == number and r.number == row), None)

    read = dict(
        con.execute(
            "select _file, count(*) from _parsed where _file between ? and ? group by _file",
            [first, first + len(batch) - 1],
        ).fetchall()
    )
    long = {reject.file for reject in found if reject.reason.startswith(LINE_TOO_LONG)}
    # A file mixing line ends whose fields are quoted is read, not failed: DuckDB sets each
    # row aside (a quote followed by the other line end's CR). It is read again as a copy
    # with LF line ends.
    mixed = {number for number in set_aside if _read_with_one_line_end(parsed[number], temp_dir)}
    # DuckDB 1.5's parallel reader can stop before the end of a file with many rows it sets
    # aside, and say nothing (README, pitfalls). A file with such rows whose rows read and
    # set aside do not add up to its lines is read again on one thread, which reads them
    # all, and its set-aside rows are taken from that reading.
    # A row longer than the reader's line limit is no broken rule: its file is read again
    # with long lines, which costs its reading a third more (so not every file is read so).
    for number in sorted(set_aside.keys() | cut.keys()):
        path = parsed[number].path
        unreported = number in cut and set_aside_cut(number) is None
        if (
            number not in long | mixed
            and read.get(number, 0) + set_aside[number] + unreported == lines[str(path)].rows
        ):
            continue
        con.execute("delete from _parsed where _file = ?", [number])
        found = [reject for reject in found if reject.file != number]
        try:
            _parse(
                con,
                entity,
                [path],
                columns,
                first=number,
                append=True,
                parallel=False,
                nul=nul,
                long_lines=number in long,
            )
        except duckdb.Error as error:  # its rows are out of `_parsed`, and it is left out
            parsed[number].unread = True
            first_line = str(error).strip().splitlines()[0]
            _reject(
                con, parsed[number].entry, f"the CSV reader could not read the file: {first_line}"
            )
            continue
        found += _structural_rejects(con, entity, columns, {str(path): number}, lines)
    for number, (row, text) in sorted(cut.items()):
        if parsed[number].unread:
            continue
        if (reject := set_aside_cut(number)) is None:
            found.append(_row_reject(entity, columns, number, row, CUT_SHORT, text))
        elif reject.reason == READER_REASONS["UNQUOTED VALUE"]:  # DuckDB's word for it
            reject.reason = CUT_SHORT
    rejects.extend(found)


def _read_with_one_line_end(landed: _Landed, temp_dir: Path) -> bool:
    """When the file mixes line ends, point `landed` at its copy with LF line ends (once)."""
    temp_dir.mkdir(parents=True, exist_ok=True)
    one_kind = temp_dir / f"{landed.entry.file_sha256[:16]}.lf.csv"
    if landed.path == one_kind or not with_one_line_end(landed.path, one_kind):
        return False
    if landed.path.parent == temp_dir:  # a transcode, not needed any more
        landed.path.unlink(missing_ok=True)
    landed.path = one_kind
    return True


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


def _parse(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    paths: list[Path],
    columns: list[str],
    first: int = 0,
    append: bool = False,
    parallel: bool = True,
    nul: bool = False,
    long_lines: bool = False,
) -> None:
    """Read and parse the files' data rows in one DuckDB scan into the temp table `_parsed`
    (typed columns, the broken rules, and the raw text of rows that break one), in reading
    order: its `rowid` numbers the rows across the files, so no window over the scan is
    needed and the scan runs on every thread. Each row carries its file's number, `_file`:
    `first` for the first of `paths`, and so on. With `append`, the rows are added to those
    of the files parsed before. Structurally broken rows (wrong field count, bad quoting,
    invalid UTF-8) go to the rejects table instead of failing the read. The statement is
    atomic: a file DuckDB cannot read adds no row. `parallel=False` reads on one thread;
    `long_lines` reads lines up to LONG_LINE_BYTES (on one thread)."""
    con.execute("drop table if exists _read_errors")
    con.execute("drop table if exists _read_scans")
    con.execute(
        parse_statement(
            entity, columns, append=append, parallel=parallel, nul=nul, long_lines=long_lines
        ),
        parse_parameters(paths, first),
    )


def parse_parameters(paths: list[Path], first: int) -> dict[str, object]:
    """The parameters of `parse_statement`: the files, as paths and as patterns, and the
    number of the first."""
    return {
        "patterns": [literal_pattern(str(path)) for path in paths],
        "paths": [str(path) for path in paths],
        "first": first,
    }


def literal_pattern(path: str) -> str:
    """The glob pattern DuckDB's reader takes for a path that matches that path only: `*`,
    `?` and `[` in a folder's or file's name each become a class of one character. (Given
    `orders_1[2].csv` as it is, DuckDB reads `orders_12.csv`.)"""
    return GLOB_CHARACTER.sub(r"[\1]", path)


def parse_statement(
    entity: Entity,
    columns: list[str],
    append: bool = False,
    parallel: bool = True,
    nul: bool = False,
    long_lines: bool = False,
) -> str:
    """The statement `_parse` runs, with the files as the parameter `$paths` (and as the
    `$patterns` that match each of them alone) and the number of the first as `$first`.
    Reading order is kept because DuckDB preserves insertion order unless told otherwise,
    through a plan of projections only: a join reorders rows (see parsing._one_of;
    tests/test_ingest.py checks every entity's plan). Every layout gives the same columns
    (`parse_select`). Rows carry their file's number rather than its path: the loader joins
    on it twice per row, and an integer is cheaper to keep and to join."""
    width = len(columns)
    types = "{" + ", ".join(f"'_c{index}': 'VARCHAR'" for index in range(1, width + 1)) + "}"
    threads = "" if parallel and not long_lines else ", parallel = false"
    if long_lines:
        threads += f", max_line_size = {LONG_LINE_BYTES}, buffer_size = {LONG_LINE_BYTES}"
    # The path is the same for all rows of a chunk: DuckDB computes its position once each.
    reader = f"""(select *, $first + list_position($paths, _path) - 1 as _file from read_csv(
        $patterns, header = false, skip = 1, auto_detect = false, columns = {types},
        delim = ',', quote = '"', escape = '"', strict_mode = true, filename = '_path',
        store_rejects = true, rejects_table = '_read_errors', rejects_scan = '_read_scans'{threads}
    ))"""
    target = (
        "insert into _parsed by name " if append else "create or replace temp table _parsed as "
    )
    return target + parse_select(entity, columns, reader, keep=["_file"], nul=nul)


def _structural_rejects(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    columns: list[str],
    numbers: dict[str, int],
    lines: dict[str, _Lines],
) -> list[_Reject]:
    """Each row DuckDB's reader set aside in the last parse, with its files' header layout and
    their numbers by path. Each file with such rows is scanned for its lines once, into
    `lines` (kept by the caller, which also counts rows by it)."""
    width = len(columns)
    rows = con.execute(
        """
        select
            scans.file_path,
            errors.line,
            arg_min(
                cast(errors.error_type as varchar), coalesce(errors.column_idx, 0)
            ) as error_type,
            arg_min(errors.error_message, coalesce(errors.column_idx, 0)) as error_message,
            any_value(errors.csv_line) as csv_line
        from _read_errors as errors
        inner join _read_scans as scans
            on errors.scan_id = scans.scan_id and errors.file_id = scans.file_id
        group by scans.file_path, errors.line
        order by scans.file_path, errors.line
        """
    ).fetchall()
    rejects = []
    for path, line, error_type, message, csv_line in rows:
        if path not in lines:
            lines[path] = _Lines.of(Path(path))
        text = (csv_line or "").strip("\r\n")
        if error_type in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            found = len(next(csv.reader([text]), []))
            reason = f"wrong field count: expected {width} fields, found {found}"
        elif error_type in READER_REASONS:
            reason = READER_REASONS[error_type]
        else:
            reason = f"{error_type.lower()}: {_clean(message)}"
        # `line` counts the header and blank lines; a data row number counts neither.
        number = line - 1 - bisect.bisect_left(lines[path].blanks, line)
        rejects.append(_row_reject(entity, columns, numbers[path], number, reason, text))
    return rejects


def _row_reject(
    entity: Entity, columns: list[str], file: int, number: int, reason: str, text: str
) -> _Reject:
    """A row set aside as it was read, its record kept whole and masked."""
    personal = [i for i, name in enumerate(columns) if name in _personal_names(entity)]
    return _Reject(
        file,
        number,
        reason,
        json.dumps({"csv_line": text}, ensure_ascii=False),
        json.dumps({"fields": _mask_fields(text, personal)}, ensure_ascii=False),
    )


def _cut_record(path: Path, counted: _Lines) -> str | None:
    """The text of the file's last record when a quoted value in it is not closed before
    the end of the file; None when it is whole. (Python's reader, as DuckDB's, takes such a
    record to the end of the file; only a strict one says it is cut.)"""
    if not counted.rows:
        return None
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        text = "".join(itertools.islice(handle, counted.last - 1, None))
    try:
        list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        return text.strip("\r\n")
    return None


def _clean(reason: str) -> str:
    return " ".join(reason.replace("\n", " ").split())


@dataclass(frozen=True)
class _Lines:
    """A file's records as a CSV reader splits them: the numbers of the blank ones (DuckDB's
    reader skips them, and its line numbers count them) and how many others follow the
    header, the file's rows. A record is a line unless a quoted field spans lines; a quote
    inside a field that does not start with one is a character, as DuckDB reads it, so
    counting quotes per line would not do."""

    blanks: list[int]
    rows: int
    last: int  # the line the last record starts on

    @classmethod
    def of(cls, path: Path) -> _Lines:
        blanks, records, last, ended = [], 0, 1, 0
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            reader = csv.reader(handle)
            try:
                for records, record in enumerate(reader, start=1):
                    if not record:
                        blanks.append(records)
                    else:
                        last = ended + 1
                    ended = reader.line_num
            except csv.Error:  # a record over the field size limit: the last record
                records += 1
                last = ended + 1
        return cls(blanks, max(records - len(blanks) - 1, 0), last)


def _store(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    parsed: list[_Landed],
    rejects: list[_Reject],
    quarantine_threshold: float,
) -> None:
    """Split the parsed rows between quarantine (rows that break a rule, and `rejects`, the
    rows the reader set aside) and raw (the rest), and write the files' ledger rows. A parsed
    row's `_file` is its file's place in `parsed`."""
    con.execute(
        "create or replace temp table _files (_file integer, load_id varchar, "
        "file_name varchar, export_date date, loaded_at timestamp)"
    )
    insert_rows(
        con,
        "insert into _files",
        [
            (
                number,
                landed.entry.load_id,
                landed.entry.file_name,
                landed.entry.export_date,
                landed.entry.loaded_at,
            )
            for number, landed in enumerate(parsed)
        ],
    )
    # Where each file's rows start in the reading order, and how many rows DuckDB read.
    con.execute(
        "create or replace temp table _extent as "
        "select _file, min(rowid) as _offset, count(*) as _rows from _parsed group by _file"
    )
    if con.execute("select count(*) from _extent where _file is null").fetchone()[0]:
        # DuckDB named a file otherwise than it was given: its rows would match no file.
        raise RuntimeError("parsed rows of a file not in the list read; nothing was stored")
    numbered = _numbered_rows(con, rejects)
    names = list(raw_columns(entity))
    contract = [column.name for column in entity.columns]
    con.execute(
        "insert into quality.quarantine "
        f"select _files.load_id, '{entity.name}', _files.file_name, _row_number, _reason, "
        f"_raw_record, _raw_record_masked from {numbered} as parsed "
        "inner join _files using (_file) where _reason is not null"
    )
    # A raw row carries its row number, so its place in the table does not matter. Kept in
    # reading order, DuckDB writes the insert's row groups in pieces and rewrites them at the
    # next checkpoint: 10M orders took 4 s more to close and a third more file.
    con.execute("set preserve_insertion_order = false")
    try:
        con.execute(
            f"insert into raw.{entity.name} ({', '.join(names)}) "
            f"select {', '.join('parsed.' + name for name in contract)}, _files.load_id, "
            "_files.file_name, _files.export_date, parsed._row_number, _files.loaded_at, "
            f"parsed._extra from {numbered} as parsed inner join _files using (_file) "
            "where _reason is null"
        )
    finally:
        con.execute("set preserve_insertion_order = true")
    counts = {
        number: (rows, bad)
        for number, rows, bad in con.execute(
            "select _files._file, coalesce(any_value(_extent._rows), 0), count(quarantine.load_id) "
            "from _files left join _extent using (_file) "
            "left join quality.quarantine as quarantine on quarantine.load_id = _files.load_id "
            "group by _files._file"
        ).fetchall()
    }
    insert_rows(
        con,
        "insert into quality.quarantine",
        [
            (
                parsed[reject.file].entry.load_id,
                entity.name,
                parsed[reject.file].entry.file_name,
                reject.number,
                reject.reason,
                reject.raw_record,
                reject.raw_record_masked,
            )
            for reject in rejects
        ],
    )
    structural = Counter(reject.file for reject in rejects)
    for number, landed in enumerate(parsed):
        if landed.unread:
            continue  # its ledger row, rejected, is written
        entry = landed.entry
        rows, bad = counts.get(number, (0, 0))
        entry.rows_loaded = rows - bad
        entry.rows_quarantined = bad + structural[number]
        entry.rows_read = entry.rows_loaded + entry.rows_quarantined
        entry.status, entry.reason = quarantine_verdict(
            entry.rows_read, entry.rows_quarantined, quarantine_threshold
        )
        insert_ledger(con, entry)
        _record_gate_check(con, entry, quarantine_threshold)


def _numbered_rows(con: duckdb.DuckDBPyConnection, rejects: list[_Reject]) -> str:
    """SQL of the parsed rows with `_row_number`, the data row number in the file. A good row's
    ordinal among its file's good rows comes from the reading order; past rejected rows it is
    shifted by how many of them precede it in its file (an as-of join, over every parsed row
    of the entity once any file has a rejected row: limiting it to those files read the
    spilled temp table twice and was slower at 10M)."""
    ordinal = "(_parsed.rowid + 1 - _extent._offset)"
    if not rejects:
        return (
            f"(select _parsed.*, {ordinal} as _row_number "
            "from _parsed inner join _extent using (_file))"
        )
    ranks: Counter[int] = Counter()
    rows = []
    for reject in rejects:
        ranks[reject.file] += 1
        rows.append((reject.file, reject.number, ranks[reject.file]))
    con.execute("create or replace temp table _rejected (_file integer, r bigint, j bigint)")
    insert_rows(con, "insert into _rejected", rows)
    return f"""(
        with ordered as (
            select _parsed.*, {ordinal} as _ordinal
            from _parsed inner join _extent using (_file)
        )
        select ordered.* exclude (_ordinal), ordered._ordinal + coalesce(shift.j, 0) as _row_number
        from ordered
        asof left join (
            select _file, r - j as t, max(j) as j from _rejected group by _file, r - j
        ) as shift
            on ordered._file = shift._file and ordered._ordinal > shift.t
    )"""


def _personal_names(entity: Entity) -> set[str]:
    return {column.name for column in entity.columns if column.personal}


def _mask_fields(line: str, personal_positions: list[int]) -> list[str | None]:
    """The fields of a malformed row with anything personal masked or removed: its field
    count is wrong, so positions are a hint only and shapes decide too. Free text of some
    length with a space or comma could be an address in any language (`Unit 5 Harbour View
    Tower, Kowloon`): it is removed, names of items and stores with it."""
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error:  # a line end inside an unquoted field: the commas are a hint enough
        fields = line.split(",")
    masked: list[str | None] = []
    for position, field in enumerate(fields):
        phone = PHONE_SHAPE.match(field)
        if phone:
            masked.append(f"{phone[1]}****{phone[2]}")
        elif (
            position in personal_positions
            or (len(field) >= 6 and ADDRESS_HINT.search(field))
            or (len(field) >= 12 and FREE_TEXT.search(field.strip()))
        ):
            masked.append(None)
        else:
            masked.append(field)
    return masked
