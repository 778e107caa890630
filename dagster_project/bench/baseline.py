"""The baseline: the same landed files loaded by DuckDB alone, as a person would without us.

One `create table <entity> as select * from read_csv([...files...])` per entity, into a fresh
database file, with DuckDB's typed auto-detection. The exports' headers differ between files
(Chinese or English names, shuffled order, an extra column), so the files are read with
`union_by_name` and every file is sniffed (`files_to_sniff = -1`): a column whose format
differs between files becomes VARCHAR, as DuckDB decides. If DuckDB still cannot read an
entity typed, it is read as text (`all_varchar`) and the result says so.

DuckDB's reader knows no GB18030, so those files are left out: the baseline reads the UTF-8
files (with or without BOM) and the result gives their share of the bytes.

Run as `python -m dagster_project.bench.baseline SPEC.json RESULT.json` so that it is
measured as its own process.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from ..defs.ingest.contract import ENTITIES
from ..defs.ingest.files import detect_encoding, landed_files


@dataclass
class BaselineSpec:
    database: str
    temp_dir: str
    memory_limit: str
    threads: int
    files: dict[str, list[str]]  # entity → UTF-8 files


@dataclass
class BaselineResult:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # per entity, inside DuckDB
    as_text: list[str] = field(default_factory=list)  # entities DuckDB could not type
    failed_seconds: float = 0.0  # the typed attempts that failed: not part of the baseline


def split_by_encoding(landing: Path) -> tuple[dict[str, list[str]], int, int]:
    """The UTF-8 files of each entity, their bytes, and the bytes of every landed file."""
    readable: dict[str, list[str]] = {}
    utf8_bytes = all_bytes = 0
    for entity in ENTITIES:
        readable[entity] = []
        for path in landed_files(landing / entity):
            size = path.stat().st_size
            all_bytes += size
            if detect_encoding(path) != "gb18030":
                readable[entity].append(str(path))
                utf8_bytes += size
    return readable, utf8_bytes, all_bytes


def load(spec: BaselineSpec) -> BaselineResult:
    result = BaselineResult()
    Path(spec.database).unlink(missing_ok=True)
    con = duckdb.connect(
        spec.database,
        config={
            "memory_limit": spec.memory_limit,
            "threads": spec.threads,
            "temp_directory": spec.temp_dir,
        },
    )
    try:
        for entity, files in spec.files.items():
            if not files:
                continue
            started = time.perf_counter()
            try:
                con.execute(
                    f"create table {entity} as select * from read_csv("
                    "$files, union_by_name = true, files_to_sniff = -1)",
                    {"files": files},
                )
            except duckdb.Error:
                result.as_text.append(entity)
                result.failed_seconds += time.perf_counter() - started
                started = time.perf_counter()
                con.execute(f"drop table if exists {entity}")
                con.execute(
                    f"create table {entity} as select * from read_csv("
                    "$files, union_by_name = true, all_varchar = true)",
                    {"files": files},
                )
            result.seconds[entity] = time.perf_counter() - started
            result.rows[entity] = con.execute(f"select count(*) from {entity}").fetchone()[0]
        con.execute("checkpoint")
    finally:
        con.close()
    return result


def main(argv: list[str]) -> int:
    spec = BaselineSpec(**json.loads(Path(argv[0]).read_text()))
    result = load(spec)
    Path(argv[1]).write_text(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
