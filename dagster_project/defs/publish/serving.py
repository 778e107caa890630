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
from ...settings import DBT_PROJECT_DIR, project_files
from ..ingest import contract
from ..ingest.contract import ENTITIES
from ..ingest.parsing import quote
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

# What BI tools show for the tables the pipeline writes itself (dbt's models carry their own
# descriptions, from the manifest): the serving copies, so the quarantine's `raw_record` is the
# masked one. Every published column is described (tests/test_end_to_end.py).
SERVING_DOCS: dict[str, tuple[str, dict[str, str]]] = {
    "load_ledger": (
        "One row per landed file the warehouse has seen; only loads with status published "
        "reach the marts.",
        {
            "load_id": "The load: one landed file, named by the file's name without its "
            "extension and the start of a hash of its folder, name and bytes.",
            "entity": "orders, refunds, fans or violations.",
            "file_name": "The file's name within its entity folder.",
            "file_sha256": "SHA-256 of the file's bytes; the same bytes landed again are a "
            "duplicate.",
            "export_date": "The export date from the file name (<entity>_<YYYYMMDD>…csv).",
            "status": "published (its rows reach the marts), blocked (read, held back by the "
            "quality gate), rejected (unreadable: no rows loaded) or duplicate (skipped).",
            "rows_read": "Data rows in the file (header and blank lines excluded) = rows_loaded "
            "+ rows_quarantined.",
            "rows_loaded": "Rows loaded into the warehouse.",
            "rows_quarantined": "Rows set aside, each in quality.quarantine with its reason.",
            "reason": "Why the file was blocked, rejected or skipped; empty when published.",
            "loaded_at": "When the run that read the file started (China local time).",
            "encoding": "The file's text encoding: utf-8, utf-8-sig (with a BOM) or gb18030.",
            "header_language": "The language of the header: en, zh or mixed.",
            "extra_columns": "Header columns the export contract does not know, ignored.",
            "missing_columns": "Optional columns of the contract the file lacks (read as NULL).",
        },
    ),
    "quarantine": (
        "One row per data row set aside, with the reason; personal fields are masked.",
        {
            "load_id": "The load the row came from; see quality.load_ledger.",
            "entity": "orders, refunds, fans or violations.",
            "file_name": "The file's name within its entity folder.",
            "row_number": "The row's number among the file's data rows (1: the first after "
            "the header).",
            "reason": "Why the row was set aside: the column, the rule and the value.",
            "raw_record": "The row's text by column, a phone masked to at most its first 3 and "
            "last 4 digits and an address dropped.",
        },
    ),
    "check_results": (
        "One row per quality check run on a load: error-level checks block a load, "
        "warn-level ones are reported.",
        {
            "load_id": "The load checked; see quality.load_ledger.",
            "check_name": "The check, as in the quality report and the README's table.",
            "severity": "error (a failed check blocks the load) or warn (reported only).",
            "passed": "Whether the load passed the check.",
            "observed_value": "Offending rows in the load (1 for a flagged row count).",
            "details": "A few offending rows with their row numbers, or what was measured.",
            "checked_at": "When the check ran.",
        },
    ),
    "publish_log": (
        "One row per publish of the serving database; the newest is this file's own.",
        {
            "publish_id": "The publish.",
            "published_at": "When it was published.",
            "loads_published": "Files whose rows are in the marts at that publish.",
            "mart_rows": "JSON: the rows of each mart at that publish.",
            "state": "A fingerprint of the loads and the dbt project it was built from.",
        },
    ),
    "releases": (
        "Blocked loads an operator published on purpose (trustwh release): who, when, why.",
        {
            "load_id": "The load released; see quality.load_ledger.",
            "entity": "orders, refunds, fans or violations.",
            "file_name": "The file's name within its entity folder.",
            "released_by": "The login that released it.",
            "released_at": "When it was released.",
            "reason": "The operator's reason.",
            "blocked_reason": "Why the quality gate had blocked it.",
        },
    ),
    "freshness": (
        "One row describing this serving database: put 'data as of' on dashboards from it.",
        {
            "publish_id": "This file's publish; see quality.publish_log.",
            "published_at": "When this serving database was published: data as of.",
            "last_data_day": "The latest day with a valid purchase (store_daily_gmv).",
            "last_export_date": "The newest export date of a published file.",
            "loads_published": "Files whose rows are in the marts.",
        },
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


def build_state(con: duckdb.DuckDBPyConnection, project: str) -> str:
    """What a publish is built from: every load and its status (a blocked or rejected file
    must reach the quality tables too) and the dbt project (`project`, its `project_state`).
    When it equals the last publish's, a build would change nothing."""
    digest = hashlib.sha256()
    for load_id, status in con.execute(
        "select load_id, status from quality.load_ledger order by load_id"
    ).fetchall():
        digest.update(f"{load_id}:{status}\n".encode())
    digest.update(project.encode())
    return digest.hexdigest()


def same_basis(basis_path: Path, project: str, pii_key: str) -> bool:
    """Whether the last successful dbt build (its basis in `basis_path`) had this project
    and key; when not, the next build must be a full refresh."""
    return basis_path.is_file() and basis_path.read_text() == build_basis(project, pii_key)


def build_is_current(
    con: duckdb.DuckDBPyConnection, state: str, basis_path: Path, project: str, pii_key: str
) -> bool:
    """Whether a build now would change nothing: the same basis as the last build, and the
    loads and project (`state`, the `build_state` there is now) the last publish was made
    from."""
    return same_basis(basis_path, project, pii_key) and last_published_state(con) == state


def build_basis(project: str, pii_key: str) -> str:
    """What the incremental models were built with: the dbt project (its `project_state`)
    and the pseudonym key, digested together (never the key itself). When it changes, dbt
    rebuilds everything."""
    return hashlib.sha256(f"{project}\n{pii_key}".encode()).hexdigest()


def project_state() -> str:
    """A digest of what the dbt project builds: the files dbt parses (models, macros, tests,
    seeds and settings), and the export contract the raw tables (dbt's sources) are made
    from. Read once per use: a build's basis is the project as the build began."""
    digest = hashlib.sha256()
    for path in [*project_files(), CONTRACT_FILE]:
        digest.update(str(path.relative_to(DBT_PROJECT_DIR.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def last_published_state(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(
        "select state from quality.publish_log order by published_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


class Docs(NamedTuple):
    """A table's description and its columns' (by name), as BI tools show them."""

    description: str
    columns: dict[str, str]


def project_tables(manifest: Path) -> dict[tuple[str, str], Docs]:
    """The tables the dbt project builds in the published schemas, by (schema, table), with
    the descriptions of the models and their columns."""
    nodes = json.loads(manifest.read_text(encoding="utf-8"))["nodes"].values()
    return {
        (node["schema"], node["alias"]): Docs(
            node["description"].strip(),
            {name: column["description"].strip() for name, column in node["columns"].items()},
        )
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
    warehouse: Path, serving: Path, models: dict[tuple[str, str], Docs], built_from: str | None
) -> Published:
    """Snapshot marts and quality into a new file and swap it in. Only what the project
    defines is published: the dbt `models` (schema, table) of the published schemas and the
    pipeline's own quality tables, each table and column with its description. A mart
    removed or renamed in the project keeps its table in the working database, and BI must
    not read it as current. `built_from` is the `build_state` the dbt step last built the
    marts from: unless it is the state there is now, nothing is published (the ledger would
    count loads the marts do not hold)."""
    staged = serving.with_name(f".{serving.stem}-{uuid.uuid4().hex[:8]}.duckdb")
    con = duckdb.connect(str(warehouse))
    publish_id = None
    wanted = set(models) | {("quality", name) for name in QUALITY_TABLES}
    try:
        if not has_ledger(con):
            raise PublishError(NOTHING_LOADED)
        state = build_state(con, project_state())
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
        if missing := sorted(set(models) - set(present)):
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
        con.execute(f"attach {quote(str(staged))} as snapshot")
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema snapshot.{schema}")
        for schema, name in relations:
            select = SERVING_SELECTS.get((schema, name), f"select * from {schema}.{name}")
            con.execute(f"create table snapshot.{schema}.{name} as {select}")
        _keep_not_null(con, columns)
        _create_freshness(con, publish_id, relations)
        _describe(con, models, [*relations, ("quality", "freshness")])
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


def _describe(
    con: duckdb.DuckDBPyConnection,
    models: dict[tuple[str, str], Docs],
    relations: list[tuple[str, str]],
) -> None:
    """Each published table and column carries its description as a DuckDB comment, which
    BI tools and `duckdb_columns()` show beside the data. A description missing (or of a
    column the table does not have) leaves a comment out, never the publish."""
    present = con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() "
        "where database_name = 'snapshot'"
    ).fetchall()
    for schema, name in relations:
        docs = models.get((schema, name)) or Docs(*SERVING_DOCS.get(name, ("", {})))
        table = f"snapshot.{schema}.{name}"
        if docs.description:
            con.execute(f"comment on table {table} is {quote(docs.description)}")
        for column in (column for s, t, column in present if (s, t) == (schema, name)):
            if text := docs.columns.get(column):
                con.execute(f'comment on column {table}."{column}" is {quote(text)}')


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
