"""Write-audit-publish of the serving database: BI opens a file that is swapped whole.

The working database is written by the ingest step and dbt; BI never opens it. After a
successful build the writer copies the marts and the quality tables into a new DuckDB file,
checkpoints and closes it, and renames it over `serving.duckdb`. A rename is atomic: a reader
opens either the old file or the new one, never half of either, and never waits for a lock
(a reader with the old file open keeps reading it until it reconnects).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import duckdb

from ...home import make_readable
from ...settings import DBT_PROJECT_DIR, SEEDS_DIR
from ..ingest import contract
from ..ingest.contract import ENTITIES
from ..ingest.tables import QUALITY_TABLES
from ..resources import close_connection

PUBLISHED_SCHEMAS = ("marts", "quality")
CONTRACT_FILE = Path(contract.__file__)
PERSONAL_COLUMNS = {
    column.name for entity in ENTITIES.values() for column in entity.columns if column.personal
}
# Quality tables whose serving copy differs from the working one.
SERVING_SELECTS = {
    ("quality", "quarantine"): (
        "select load_id, entity, file_name, row_number, reason, "
        "raw_record_masked as raw_record from quality.quarantine"
    ),
}


class PublishError(Exception):
    pass


NOTHING_LOADED = (
    "nothing has been loaded into this home yet: run the whole job (or materialize the "
    "ingest first)"
)


def has_ledger(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether an ingest ever ran on the working database (it creates the load ledger)."""
    return con.execute(
        "select count(*) from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'quality' and table_name = 'load_ledger'"
    ).fetchone() == (1,)


def build_state(con: duckdb.DuckDBPyConnection) -> str:
    """What a publish is built from: every load and its status (a blocked or rejected file
    must reach the quality tables too) and the dbt project's files. When it equals the last
    publish's, a build would change nothing."""
    digest = hashlib.sha256()
    for load_id, status in con.execute(
        "select load_id, status from quality.load_ledger order by load_id"
    ).fetchall():
        digest.update(f"{load_id}:{status}\n".encode())
    digest.update(project_state().encode())
    return digest.hexdigest()


def same_basis(basis_path: Path, pii_key: str) -> bool:
    """Whether the last successful dbt build (its basis in `basis_path`) had this project
    and key; when not, the next build must be a full refresh."""
    return basis_path.is_file() and basis_path.read_text() == build_basis(pii_key)


def build_is_current(
    con: duckdb.DuckDBPyConnection, state: str, basis_path: Path, pii_key: str
) -> bool:
    """Whether a build now would change nothing: the same basis as the last build, and the
    loads and project (`state`, the `build_state` there is now) the last publish was made
    from."""
    return same_basis(basis_path, pii_key) and last_published_state(con) == state


def build_basis(pii_key: str) -> str:
    """What the incremental models were built with: the dbt project and the pseudonym key,
    digested together (never the key itself). When it changes, dbt rebuilds everything."""
    return hashlib.sha256(f"{project_state()}\n{pii_key}".encode()).hexdigest()


def project_state() -> str:
    """A digest of what the dbt project builds: its models, macros, tests, seeds and settings,
    and the export contract the raw tables (dbt's sources) are made from."""
    digest = hashlib.sha256()
    folders = [DBT_PROJECT_DIR / name for name in ("models", "macros", "tests", "snapshots")]
    files = [DBT_PROJECT_DIR / "dbt_project.yml", *sorted(SEEDS_DIR.rglob("*"))]
    files += sorted(path for folder in folders for path in folder.rglob("*"))
    files.append(CONTRACT_FILE)
    for path in files:
        if path.is_file():
            digest.update(str(path.relative_to(DBT_PROJECT_DIR.parent)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def last_published_state(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(
        "select state from quality.publish_log order by published_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def project_tables(manifest: Path) -> set[tuple[str, str]]:
    """The tables the dbt project builds in the published schemas, as (schema, table)."""
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
    return {
        (node["schema"], node["alias"])
        for node in nodes
        if node["resource_type"] == "model"
        and node["schema"] in PUBLISHED_SCHEMAS
        and node["config"]["materialized"] != "ephemeral"
    }


@dataclass
class Published:
    mart_rows: dict[str, int]  # rows of each mart published
    # Tables of the published schemas that the project no longer builds: not published.
    left_out: list[str]


def publish(
    warehouse: Path, serving: Path, models: set[tuple[str, str]], built_from: str | None
) -> Published:
    """Snapshot marts and quality into a new file and swap it in. Only what the project
    defines is published: the dbt `models` (schema, table) of the published schemas and the
    pipeline's own quality tables. A mart removed or renamed in the project keeps its table
    in the working database, and BI must not read it as current. `built_from` is the
    `build_state` the dbt step last built the marts from: unless it is the state there is
    now, nothing is published (the ledger would count loads the marts do not hold)."""
    staged = serving.with_name(f".{serving.stem}-{uuid.uuid4().hex[:8]}.duckdb")
    con = duckdb.connect(str(warehouse))
    publish_id = None
    wanted = models | {("quality", name) for name in QUALITY_TABLES}
    try:
        if not has_ledger(con):
            raise PublishError(NOTHING_LOADED)
        state = build_state(con)
        if built_from != state:
            raise PublishError(
                "the marts are not built from the loads and dbt project there are now: "
                "nothing published. Materialize the dbt models first, or run the whole job."
            )
        present = con.execute(
            """
            select table_schema, table_name from information_schema.tables
            where table_catalog = current_database() and table_schema in ('marts', 'quality')
            order by table_schema, table_name
            """
        ).fetchall()
        if missing := sorted(models - set(present)):
            raise PublishError(
                f"the working database has no {', '.join(map('.'.join, missing))}: nothing "
                "published. Run the whole job."
            )
        relations = [relation for relation in present if relation in wanted]
        # A double underscore marks what a build keeps for itself (an incremental mart's
        # `__changed` keys, dbt's `__dbt_tmp` and `__dbt_backup`): not worth a word.
        left_out = [
            f"{schema}.{name}"
            for schema, name in present
            if (schema, name) not in wanted and "__" not in name
        ]
        columns = _columns(con, relations)
        _refuse_personal_data(columns)
        mart_rows = {
            name: con.execute(f"select count(*) from marts.{name}").fetchone()[0]
            for schema, name in relations
            if schema == "marts"
        }
        loads = con.execute(
            "select count(*) from quality.load_ledger where status = 'published'"
        ).fetchone()[0]
        now = datetime.now().replace(microsecond=0)
        publish_id = uuid.uuid4().hex[:12]
        con.execute(
            "insert into quality.publish_log values (?, ?, ?, ?, ?)",
            [publish_id, now, loads, json.dumps(mart_rows), state],
        )
        con.execute(f"attach '{staged}' as snapshot")
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema snapshot.{schema}")
        for schema, name in relations:
            select = SERVING_SELECTS.get((schema, name), f"select * from {schema}.{name}")
            con.execute(f"create table snapshot.{schema}.{name} as {select}")
        _keep_not_null(con, columns)
        _create_freshness(con, publish_id, relations)
        con.execute("checkpoint snapshot")
        con.execute("detach snapshot")
        make_readable(staged)  # private, as every file the pipeline creates, until shared
        os.replace(staged, serving)
    except BaseException:
        staged.unlink(missing_ok=True)
        if publish_id:  # not published: the next run must not take this state as published
            with contextlib.suppress(duckdb.Error):
                con.execute("delete from quality.publish_log where publish_id = ?", [publish_id])
        raise
    finally:
        close_connection(con)
    return Published(mart_rows, left_out)


def _keep_not_null(con: duckdb.DuckDBPyConnection, columns: list[Column]) -> None:
    """The marts' NOT NULL columns (their contracts' `not_null` constraints) stay NOT NULL in
    the serving copy, which `create table … as` does not carry over: BI tools show it."""
    for column in columns:
        if column.schema == "marts" and not column.nullable:
            con.execute(
                f'alter table snapshot.marts.{column.table} alter column "{column.name}" '
                "set not null"
            )


def _create_freshness(
    con: duckdb.DuckDBPyConnection, publish_id: str, relations: list[tuple[str, str]]
) -> None:
    """`quality.freshness`: one row saying what this serving file holds, for "data as of"."""
    last_day = (
        "(select max(purchase_date) from snapshot.marts.store_daily_gmv)"
        if ("marts", "store_daily_gmv") in relations
        else "cast(null as date)"
    )
    con.execute(
        f"""
        create table snapshot.quality.freshness as
        select
            publish_id,
            published_at,
            {last_day} as last_data_day,
            (
                select max(export_date) from snapshot.quality.load_ledger
                where status = 'published'
            ) as last_export_date,
            loads_published
        from snapshot.quality.publish_log
        where publish_id = ?
        """,
        [publish_id],
    )


def _refuse_personal_data(columns: list[Column]) -> None:
    leaks = [column.qualified for column in columns if column.name in PERSONAL_COLUMNS]
    if leaks:
        raise PublishError(f"personal data may not be published: {', '.join(leaks)}")


class Column(NamedTuple):
    schema: str
    table: str
    name: str
    nullable: bool

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.table}.{self.name}"


def _columns(con: duckdb.DuckDBPyConnection, relations: list[tuple[str, str]]) -> list[Column]:
    """The columns of `relations` in the working database, in order."""
    rows = con.execute(
        """
        select table_schema, table_name, column_name, is_nullable = 'YES'
        from information_schema.columns
        where table_catalog = current_database() and table_schema in ('marts', 'quality')
        order by table_schema, table_name, ordinal_position
        """
    ).fetchall()
    published = set(relations)
    return [Column(*row) for row in rows if (row[0], row[1]) in published]
