"""Reading a landed export file's envelope: name, bytes, encoding and header. Pure helpers."""

from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from .contract import Entity
from .tables import insert_rows

FILE_NAME = re.compile(r"^(?P<entity>[a-z]+)_(?P<date>\d{8})(?:_.*)?\.csv$", re.IGNORECASE)
SAMPLE_BYTES = 1 << 16
CHUNK_BYTES = 1 << 20


class RejectedFile(Exception):
    """A file that cannot be read at all; the message says why and what to do."""


def landed_files(folder: Path) -> list[Path]:
    """Every regular file of an entity folder (hidden files aside) whose name is text, in
    name order. What it leaves, `stray_files` records: a name that is not UTF-8, a folder
    that cannot be read."""
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return []
    return [
        path
        for path in entries
        if path.is_file() and not path.name.startswith(".") and is_text(path.name)
    ]


def is_text(name: str) -> bool:
    """Whether a name read from the file system is UTF-8 text (Python keeps other bytes as
    lone surrogates, which DuckDB and the ledger cannot take)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def shown(name: str) -> str:
    """A name from the file system as text: bytes that are not UTF-8 appear as `\\xb6`."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


NOT_TEXT_NAME = (
    "the file's name is not UTF-8 text (a name in another encoding, e.g. from an archive "
    "unpacked on another system): rename it and land it again"
)


@dataclass(frozen=True)
class Stray:
    """Something in the landing folder that no export folder's reading takes up."""

    name: str  # its path from the landing folder
    path: Path
    reason: str


# The ledger's `entity` of the files outside the export folders.
LANDING = "landing"


def stray_files(landing: Path, entities: list[str], skip: Path | None = None) -> list[Stray]:
    """Files the loader does not read, so that none is passed over in silence: files at the
    landing folder's top, in a folder that is no export folder (`products/`, `Orders/`), in
    a folder inside an export folder, and entries of an export folder that are not files (a
    broken link). Hidden entries are passed over, as by `landed_files`, and so is `skip`
    (the home, when it lies inside the landing folder)."""
    strays: list[Stray] = []

    def add(path: Path, reason: str) -> None:
        strays.append(Stray(shown(path.relative_to(landing).as_posix()), path, reason))

    if not landing.is_dir():
        return strays
    for top in sorted(landing.iterdir()):
        if top.name.startswith(".") or (skip is not None and top == skip):
            continue
        if top.is_dir() and top.name in entities:
            try:
                entries = sorted(top.iterdir())
            except OSError as error:
                add(top, _unreadable(error))
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_file():
                    if not is_text(entry.name):
                        add(entry, NOT_TEXT_NAME)
                    continue
                if not entry.is_dir():
                    add(entry, "not a regular file (a broken link, a pipe?)")
                    continue
                for path, unreadable in _files_under(entry):
                    add(
                        path,
                        unreadable
                        or f"in a folder inside {top.name}/, whose files only are read: move "
                        f"it to {top.name}/",
                    )
            continue
        for path, unreadable in _files_under(top) if top.is_dir() else [(top, None)]:
            match = FILE_NAME.match(path.name)
            looks_like = match["entity"].lower() if match else top.name.lower()
            if top.is_dir():
                reason = f"in {top.name}/, which is not an export folder ({_folders(entities)})"
            else:
                reason = f"not in an export folder ({_folders(entities)})"
            if looks_like in entities:
                reason += f": move it to {looks_like}/"
            add(path, unreadable or reason)
    return strays


def recorded_strays(con: Any) -> set[str]:
    """The files outside the export folders the ledger has recorded, by their landing path."""
    rows = con.execute(
        "select file_name from quality.load_ledger where entity = ?", [LANDING]
    ).fetchall()
    return {name for (name,) in rows}


def _folders(entities: list[str]) -> str:
    return ", ".join(f"{entity}/" for entity in entities)


def _files_under(folder: Path) -> list[tuple[Path, str | None]]:
    """Every entry under `folder` that is not a folder, hidden ones aside, in name order; and
    each folder that cannot be listed, with why."""
    found: list[tuple[Path, str | None]] = []

    def unreadable(error: OSError) -> None:
        found.append((Path(error.filename), _unreadable(error)))

    for root, folders, files in os.walk(folder, onerror=unreadable):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [(Path(root) / name, None) for name in sorted(files) if not name.startswith(".")]
    return found


def _unreadable(error: OSError) -> str:
    return f"the folder cannot be read ({error.strerror}): none of its files is read"


# What a file that is no CSV most likely is, and what to do with it.
NOT_CSV = {
    **dict.fromkeys(
        (".gz", ".zip", ".bz2", ".xz", ".7z", ".rar", ".tar"),
        "a compressed file: unpack it and land the CSV inside",
    ),
    **dict.fromkeys(
        (".xlsx", ".xls", ".et"), "a spreadsheet: save it as CSV (UTF-8) and land that"
    ),
}


def export_date(entity: Entity, path: Path) -> date:
    if path.suffix.lower() in NOT_CSV:
        raise RejectedFile(NOT_CSV[path.suffix.lower()])
    match = FILE_NAME.match(path.name)
    if not match or match["entity"].lower() != entity.name:
        raise RejectedFile(
            f"file name does not follow {entity.name}_<YYYYMMDD>[_<anything>].csv; "
            "rename it and land it again"
        )
    try:
        return datetime.strptime(match["date"], "%Y%m%d").date()
    except ValueError as error:
        raise RejectedFile(
            f"export date {match['date']!r} in the file name is not a date"
        ) from error


def sha256(path: Path) -> str:
    return scan(path)[0]


@dataclass(frozen=True)
class Contents:
    """What the loader must know of a file's bytes, found while they are hashed."""

    nul: bool  # a NUL byte: text never holds one; the loader sets aside the rows that do
    # An odd number of quotes: a quoted field may run to the end of the file (a half-copied
    # file), whose last row DuckDB's parallel reader can drop without a word.
    open_quote: bool


def scan(path: Path) -> tuple[str, Contents]:
    """The file's SHA-256 and what the loader must know of its bytes, in one reading.
    (A quote is byte 0x22 in UTF-8 and GB18030 alike: neither uses it inside a character.)"""
    digest, nul, quotes = hashlib.sha256(), False, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            nul = nul or b"\x00" in chunk
            quotes += chunk.count(b'"')
    return digest.hexdigest(), Contents(nul, quotes % 2 == 1)


@dataclass(frozen=True)
class FileStat:
    size_bytes: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileStat:
        stat = path.stat()
        return cls(stat.st_size, stat.st_mtime_ns)


def cached_digests(con: Any, entity: Entity) -> dict[str, tuple[FileStat, str]]:
    """The digest of each file of the entity as last hashed, with the size and time it had."""
    rows = con.execute(
        "select file_name, size_bytes, mtime_ns, file_sha256 from raw.landed_file_digests "
        "where entity = ?",
        [entity.name],
    ).fetchall()
    return {name: (FileStat(size, mtime), digest) for name, size, mtime, digest in rows}


def known_digest(name: str, stat: FileStat, cached: dict[str, tuple[FileStat, str]]) -> str | None:
    """The digest of the file `name` as last hashed, if it had the size and modification time
    `stat` then; None when only reading it again can tell."""
    hashed_stat, digest = cached.get(name, (None, None))
    return digest if hashed_stat == stat else None


def remember_digests(con: Any, entity: Entity, digests: dict[str, tuple[FileStat, str]]) -> None:
    insert_rows(
        con,
        "insert or replace into raw.landed_file_digests",
        [
            (entity.name, name, stat.size_bytes, stat.mtime_ns, digest)
            for name, (stat, digest) in digests.items()
        ],
    )


def detect_encoding(path: Path) -> str:
    """utf-8, utf-8-sig or gb18030, judged from the file's first 64 KiB; or from the whole
    file when those are ASCII only, which UTF-8 and GB18030 write alike (a file of English
    headers and ASCII values whose first Chinese text comes later)."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if not head.strip():
        raise RejectedFile("the file is empty: no header row and no data")
    # UTF-16 writes a NUL beside every ASCII character (a header's commas): binary data has
    # many. A stray NUL in a data row of text is that row's problem.
    first_line = head.split(b"\n", 1)[0]
    if (
        head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
        or b"\x00" in first_line
        or head.count(0) * 8 > len(head)
    ):
        raise RejectedFile(
            "the file looks like UTF-16 or binary data, not text in UTF-8 or GB18030; "
            "export it again as CSV (UTF-8)"
        )
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.isascii():
        if len(head) == SAMPLE_BYTES and not _decodes(path, "utf-8") and _decodes(path, "gb18030"):
            return "gb18030"
        # Bytes that are not UTF-8 further on: DuckDB's reader sets their rows aside.
        return "utf-8"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError as error:
        not_utf8 = error.start
    try:
        codecs.getincrementaldecoder("gb18030")().decode(head, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        pass
    line = head.count(b"\n", 0, not_utf8) + 1
    raise RejectedFile(
        f"the file is neither UTF-8 nor GB18030 text (line {line}, byte {not_utf8} is not "
        "UTF-8); export it again as CSV (UTF-8)"
    )


def _decodes(path: Path, encoding: str) -> bool:
    """Whether the whole file is text in `encoding`, read in chunks."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with path.open("rb") as handle:
        try:
            while chunk := handle.read(CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return False
    return True


def transcode_to_utf8(source: Path, target: Path, encoding: str) -> None:
    """Stream a GB18030 file into UTF-8 so DuckDB's reader (UTF-8 only) can read it."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with source.open("rb") as reader, target.open("wb") as writer:
        while True:
            chunk = reader.read(CHUNK_BYTES)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                raise RejectedFile(
                    f"byte {offset + error.start} is not valid {encoding}; the file is damaged or "
                    "mixes encodings: export it again"
                ) from error
            writer.write(text.encode("utf-8"))
            if not chunk:
                break
            offset += len(chunk)


def with_one_line_end(source: Path, target: Path) -> bool:
    """When `source` ends its lines in more than one way (LF, CRLF, a lone CR), write it to
    `target` with LF alone and say so; else write nothing. DuckDB's reader takes one kind of
    line end per file, sniffed from its start, and fails a file that mixes them ("The CSV
    Parser state machine reached an invalid state"), as a header saved apart from its rows
    can be. A line end inside a quoted field becomes LF too."""
    kinds: set[str] = set()
    for data in _chunks_whole_line_ends(source):
        crlf = data.count(b"\r\n")
        counts = {"crlf": crlf, "cr": data.count(b"\r") - crlf, "lf": data.count(b"\n") - crlf}
        kinds |= {kind for kind, count in counts.items() if count}
    if len(kinds) < 2:
        return False
    with target.open("wb") as writer:
        for data in _chunks_whole_line_ends(source):
            writer.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
    return True


def _chunks_whole_line_ends(source: Path) -> Iterator[bytes]:
    """The file's bytes in chunks that never split a CRLF."""
    carry = b""
    with source.open("rb") as reader:
        while chunk := reader.read(CHUNK_BYTES):
            data = carry + chunk
            carry = b"\r" if data.endswith(b"\r") else b""
            yield data[: len(data) - len(carry)]
    if carry:
        yield carry


@dataclass(frozen=True)
class Header:
    columns: list[str]  # per file position: a contract column name, or the raw extra name
    extra: list[str]  # names of unknown columns, kept in raw._extra
    missing: list[str]  # optional contract columns the file lacks (loaded as empty)
    language: str  # en, zh or mixed


def read_header_line(path: Path, encoding: str) -> list[str]:
    with path.open(encoding=encoding, newline="") as handle:
        first = handle.readline()
    fields = next(csv.reader([first]), [])
    return [field.strip().lstrip("\ufeff").strip() for field in fields]


def map_header(entity: Entity, names: list[str]) -> Header:
    """Map a file's header (English or Chinese names, any order) onto the contract."""
    english = {column.name.lower(): column.name for column in entity.columns}
    chinese = {column.zh: column.name for column in entity.columns}
    columns: list[str] = []
    extra: list[str] = []
    languages: set[str] = set()
    for position, name in enumerate(names, start=1):
        if name.lower() in english:
            canonical = english[name.lower()]
            languages.add("en")
        elif name in chinese:
            canonical = chinese[name]
            languages.add("zh")
        else:
            label = name or f"column_{position}"
            if label in columns:  # an unknown name given twice: both are kept
                label = f"{label}_{position}"
            extra.append(label)
            columns.append(label)
            continue
        if canonical in columns:
            raise RejectedFile(f"column {canonical!r} appears twice in the header")
        columns.append(canonical)
    if not languages:
        raise RejectedFile(
            f"no header row: the first line names no column of the {entity.name} export "
            f"(expected e.g. {entity.columns[0].name} or {entity.columns[0].zh})"
        )
    required = [c for c in entity.columns if c.required or c.name in entity.key]
    absent = [f"{c.name} ({c.zh})" for c in required if c.name not in columns]
    if absent:
        raise RejectedFile("required column missing in both languages: " + ", ".join(absent))
    missing = [column.name for column in entity.columns if column.name not in columns]
    language = "mixed" if len(languages) > 1 else languages.pop()
    return Header(columns=columns, extra=extra, missing=missing, language=language)
