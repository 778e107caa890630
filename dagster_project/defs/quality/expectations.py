"""The quality gate's runner: Great Expectations validates each run's new loads in DuckDB.

The suites are plain data in `data_tests/`. Per export and run, GX validates all new loads
as one batch (`raw.<entity>` rows whose `_load_id` is new), pushed down to DuckDB: no rows
are loaded into Python. When an expectation fails, the check's own SQL splits the failure by
load, so only the loads that break it are blocked and the others publish.

GX is imported lazily (it costs seconds): listing the checks for Dagster never imports it.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import dagster as dg
import duckdb

from data_tests import SUITES, Check, Suite
from data_tests.common import ERROR, NEW_LOADS

from ...errors import interrupted
from ...home import make_readable
from ..ingest.contract import Entity
from ..ingest.tables import insert_rows
from ..resources import close_connection
from .data_docs import DATA_DOCS_INDEX
from .gate import BLOCKED, PUBLISHED

if TYPE_CHECKING:
    from ..ingest.loader import LedgerEntry

log = logging.getLogger(__name__)

DATASOURCE = "warehouse"
DETAIL_SAMPLES = 5


# GX keeps one result file and one page per export and run; older ones are removed.
VALIDATIONS_KEPT = timedelta(days=90)
_RUN_FOLDER = re.compile(r"^\d{8}T\d{6}\.\d+Z$")


def gx_dir(home: Path) -> Path:
    return home / "quality" / "gx"


def prune_validations(docs_dir: Path, now: datetime, kept: timedelta = VALIDATIONS_KEPT) -> int:
    """Remove GX validation results and their Data Docs pages older than `kept`; return how
    many runs' folders went. `quality.check_results` keeps every result as data."""
    removed = 0
    roots = [
        docs_dir / "uncommitted" / "validations",
        docs_dir / DATA_DOCS_INDEX.parent / "validations",
    ]
    for root in roots:
        if not root.is_dir():
            continue
        for folder in root.glob("**/*"):
            if not (folder.is_dir() and _RUN_FOLDER.match(folder.name)):
                continue
            ran_at = datetime.strptime(folder.name[:15], "%Y%m%dT%H%M%S")
            if now - ran_at > kept:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


@dataclass
class DataDocs:
    """GX's results and Data Docs under `root` (without one, in memory and never rendered),
    and the one GX context of a run's validations.

    Each validation stores its result there; `build` then renders those results' pages and
    the index once, after the last export (GX's UpdateDataDocsAction rebuilt the index after
    every one: ~0.5 s each). Suites, validation definitions and checkpoints stay in the
    context's memory: they are rebuilt from `data_tests/` on every run, and GX re-wrote a
    stored suite to disk once per expectation on every run."""

    root: Path | None = None
    # GX's identifiers of this run's validation results not rendered yet
    pending: list[Any] = field(default_factory=list)
    _gx_context: Any = field(default=None, repr=False)

    def context(self) -> Any:
        if self._gx_context is None:
            self._gx_context = _context(_gx(), self.root)
        return self._gx_context

    def build(self) -> None:
        """Prune results past the retention, then render this run's results, every suite's
        page and the index (which lists the suites the context holds: all of them)."""
        if not self.pending or self.root is None:
            return
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
        )

        prune_validations(self.root, datetime.now(UTC).replace(tzinfo=None))
        context = self.context()
        for suite in SUITES.values():
            _held_suite(_gx(), context, suite)
        suites = [ExpectationSuiteIdentifier(name=suite.name) for suite in SUITES.values()]
        context.build_data_docs(resource_identifiers=[*self.pending, *suites])
        make_readable(self.root)
        self.pending.clear()


@dataclass
class CheckOutcome:
    """One check on one load: a row of `quality.check_results`."""

    load_id: str
    check_name: str
    severity: str
    passed: bool
    observed_value: float | None  # offending rows in the load (missing columns for a table check)
    details: str | None
    error: str | None = None  # set when the check could not be evaluated

    @property
    def blocks(self) -> bool:
        return self.severity == ERROR and not self.passed


@dataclass
class _Unexpected:
    """One check's offending rows in one load: how many, and a few examples."""

    count: int
    samples: list[str]


def validate_loads(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    entries: Iterable[LedgerEntry],
    *,
    docs: DataDocs | None = None,
) -> list[CheckOutcome]:
    """Validate the given new loads of one export against its suite; record one
    `quality.check_results` row per load and check, and block every load failing an
    error-level check (in the ledger and in the entries). If GX cannot validate, every load
    of the batch is blocked as "could not be validated". With `docs`, the run's GX context,
    GX stores its result there, and `docs.build()` renders it."""
    entries = list(entries)
    if not entries:
        return []
    docs = docs if docs is not None else DataDocs()
    suite = SUITES[entity.name]
    checked_at = datetime.now().replace(microsecond=0)
    load_ids = [entry.load_id for entry in entries]
    rows = {entry.load_id: entry.rows_loaded for entry in entries}
    times = [entry.loaded_at for entry in entries]
    since = min(times) if None not in times else None
    try:
        outcomes = _validate(con, suite, load_ids, rows, docs, since)
    except Exception as error:  # the gate could not do its job: block, never publish unseen
        if interrupted(error):
            raise
        log.exception("GX could not validate the %s loads", entity.name)
        message = _one_line(f"{type(error).__name__}: {error}")
        outcomes = [
            CheckOutcome(load_id, check.name, check.severity, False, None, message, error=message)
            for load_id in load_ids
            for check in suite.checks
        ]
    _record(con, entries, outcomes, checked_at)
    return outcomes


UNVALIDATED = "could not be validated"


def unvalidated_loads(con: duckdb.DuckDBPyConnection, entity: Entity) -> list[LedgerEntry]:
    """Loads blocked only because the gate could not validate them (GX failed), not released
    nor superseded since: each run validates them again with its new loads, and a load that
    passes then publishes. A load blocked for its data stays blocked until released or fixed."""
    from ..ingest.loader import LedgerEntry

    rows = con.execute(
        """
        select load_id, file_name, file_sha256, export_date, rows_read, rows_loaded,
            rows_quarantined, loaded_at
        from quality.load_ledger
        where entity = ? and status = ? and starts_with(reason, ?)
            and not contains(reason, '; superseded by ')
        order by load_id
        """,
        [entity.name, BLOCKED, UNVALIDATED],
    ).fetchall()
    return [
        LedgerEntry(
            load_id=load_id,
            entity=entity.name,
            file_name=file_name,
            file_sha256=digest,
            export_date=export_date,
            status=PUBLISHED,
            rows_read=read,
            rows_loaded=loaded,
            rows_quarantined=quarantined,
            loaded_at=loaded_at,
        )
        for load_id, file_name, digest, export_date, read, loaded, quarantined, loaded_at in rows
    ]


def batch_query(entity: Entity, since: datetime | None = None) -> str:
    """The rows GX validates: the new loads only, never history. With `since`, the earliest
    load time among them, also by load time: a load's rows carry its ledger time, and a
    TIMESTAMP's zone map lets DuckDB skip the row groups of earlier loads. By load id alone
    it read every row of history (a VARCHAR's zone map keeps 8 bytes, and every load id of
    an export starts alike), once per query of the suite."""
    loads = f"_load_id in (select load_id from {NEW_LOADS})"
    if since is not None:
        loads = f"_loaded_at >= timestamp '{since.isoformat(sep=' ')}' and {loads}"
    return f"select * from raw.{entity.name} where {loads}"


def _validate(
    con: duckdb.DuckDBPyConnection,
    suite: Suite,
    load_ids: list[str],
    rows: dict[str, int],
    docs: DataDocs,
    since: datetime | None,
) -> list[CheckOutcome]:
    gx = _gx()
    batch = batch_query(suite.entity, since)
    context = docs.context()
    # GX gets its own connection to the same database, kept open for the whole validation
    # (see `_persistent_connection`); it only reads what the loader has committed.
    cursor = con.cursor()
    try:
        cursor.execute(f"create or replace temp table {NEW_LOADS} (load_id varchar)")
        insert_rows(cursor, f"insert into {NEW_LOADS}", [[i] for i in load_ids])
        identifier, result = _run_checkpoint(gx, context, suite, cursor, batch)
        docs.pending.append(identifier)
        by_name = {
            (outcome.expectation_config.meta or {}).get("check_name"): outcome
            for outcome in result.results
        }
        outcomes = []
        for check in suite.checks:
            outcomes += _check_outcomes(cursor, batch, check, by_name.get(check.name), rows)
        return outcomes
    finally:
        close_connection(cursor)


def _run_checkpoint(
    gx: Any, context: Any, suite: Suite, cursor: Any, batch: str
) -> tuple[Any, Any]:
    """GX's validation of the batch (`batch_query`): its result and the result's store
    identifier."""
    import sqlalchemy as sa

    connection = _persistent_connection(cursor)
    datasource = context.data_sources.add_or_update_sql(
        DATASOURCE,
        connection_string="duckdb://",
        kwargs={"creator": lambda: connection, "poolclass": sa.pool.StaticPool},
    )
    asset = datasource.add_query_asset(suite.name, query=batch)
    batch = asset.add_batch_definition_whole_table("new loads")
    gx_suite = _held_suite(gx, context, suite)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=f"gate.{suite.name}",
            validation_definitions=[definition],
            result_format={"result_format": "SUMMARY"},
        )
    )
    [(identifier, result)] = checkpoint.run().run_results.items()
    return identifier, result


def _held_suite(gx: Any, context: Any, suite: Suite) -> Any:
    """The context's GX suite of a data_tests suite, added on first use. The context lives
    for one run, so the suite it holds is this code's: no comparison, no rewrite."""
    try:
        return context.suites.get(suite.name)
    except gx.exceptions.DataContextError:
        return context.suites.add(build_suite(gx, suite))


def build_suite(gx: Any, suite: Suite) -> Any:
    """The GX ExpectationSuite of a data_tests suite; each expectation carries its check name."""
    gx_suite = gx.ExpectationSuite(name=suite.name)
    for check in suite.checks:
        expectation = _EXPECTATIONS.get(check.expectation) or getattr(
            gx.expectations, check.expectation
        )
        gx_suite.add_expectation(
            expectation(
                **check.kwargs,
                description=f"[{check.severity}] {check.name}: {check.description}",
                meta={"check_name": check.name, "severity": check.severity},
            )
        )
    return gx_suite


def _check_outcomes(
    cursor: duckdb.DuckDBPyConnection,
    batch: str,
    check: Check,
    result: Any,
    rows: dict[str, int],
) -> list[CheckOutcome]:
    """A GX result over the whole batch, turned into one outcome per load."""

    def each(passed: bool, observed: float | None, details: Callable[[str], str | None]):
        return [
            CheckOutcome(load_id, check.name, check.severity, passed, observed, details(load_id))
            for load_id in rows
        ]

    def error(message: str) -> list[CheckOutcome]:
        message = f"{check.name} could not be evaluated: {message}"
        return [
            CheckOutcome(load_id, check.name, check.severity, False, None, message, message)
            for load_id in rows
        ]

    if result is None:
        return error("GX returned no result for it")
    raised = _raised(result)
    if raised:
        return error(raised)
    if result.success:
        return each(True, 0.0, lambda load_id: f"passed on {rows[load_id]} rows")
    if check.unexpected_rows is None:  # a table-level check fails every load alike
        detail = _one_line(result.result.get("details") or result.result.get("observed_value"))
        return each(False, None, lambda _: f"failed: {detail}")
    total = result.result.get("unexpected_count", result.result.get("observed_value"))
    if not isinstance(total, int):
        return error(f"GX reported no count of unexpected rows ({_one_line(result.result)})")
    unexpected = _unexpected_by_load(cursor, batch, check)
    found = sum(part.count for part in unexpected.values())
    if found != total:
        return error(f"GX found {total} unexpected rows, the split by load found {found}")
    outcomes = []
    for load_id in rows:
        part = unexpected.get(load_id)
        if part is None:
            outcomes.append(
                CheckOutcome(
                    load_id,
                    check.name,
                    check.severity,
                    True,
                    0.0,
                    f"passed on {rows[load_id]} rows",
                )
            )
            continue
        more = (
            f"; … {part.count - len(part.samples)} more" if part.count > len(part.samples) else ""
        )
        outcomes.append(
            CheckOutcome(
                load_id,
                check.name,
                check.severity,
                False,
                float(part.count),
                "; ".join(part.samples) + more
                if check.load_level
                else f"{part.count} of {rows[load_id]} rows: " + "; ".join(part.samples) + more,
            )
        )
    return outcomes


def _unexpected_by_load(
    cursor: duckdb.DuckDBPyConnection, batch: str, check: Check
) -> dict[str, _Unexpected]:
    """The check's offending rows of the batch counted per load, in DuckDB."""
    query = check.unexpected_rows.replace("{batch}", f"({batch})")
    return {
        load_id: _Unexpected(count, samples)
        for load_id, count, samples in cursor.execute(
            f"""
            select _load_id, count(*), list_slice(list(_detail order by _detail), 1, ?)
            from ({query}) as unexpected
            group by _load_id
            """,
            [DETAIL_SAMPLES],
        ).fetchall()
    }


def _record(
    con: duckdb.DuckDBPyConnection,
    entries: list[LedgerEntry],
    outcomes: list[CheckOutcome],
    checked_at: datetime,
) -> None:
    """Write the check results and block the loads that failed an error-level check."""
    by_load: dict[str, list[CheckOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_load[outcome.load_id].append(outcome)
    con.execute("begin transaction")
    try:
        insert_rows(
            con,
            "insert into quality.check_results (load_id, check_name, severity, passed, "
            "observed_value, details, checked_at)",
            [
                (
                    outcome.load_id,
                    outcome.check_name,
                    outcome.severity,
                    outcome.passed,
                    outcome.observed_value,
                    outcome.details,
                    checked_at,
                )
                for outcome in outcomes
            ],
        )
        for entry in entries:
            failed = [outcome for outcome in by_load[entry.load_id] if outcome.blocks]
            if failed:
                reason = block_reason(failed)
                entry.reason = (
                    f"{entry.reason}; also {reason}" if entry.status == BLOCKED else reason
                )
                entry.status = BLOCKED
            # A new load's row says this already; a load validated again now publishes.
            con.execute(
                "update quality.load_ledger set status = ?, reason = ? where load_id = ?",
                [entry.status, entry.reason, entry.load_id],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def block_reason(failed: list[CheckOutcome]) -> str:
    """Why a load is blocked, naming the error-level checks it failed."""
    named = ", ".join(
        f"{outcome.check_name} ({int(outcome.observed_value)} "
        f"row{'' if outcome.observed_value == 1 else 's'})"
        if outcome.observed_value is not None
        else outcome.check_name
        for outcome in failed
        if not outcome.error
    )
    errors = "; ".join(sorted({outcome.error for outcome in failed if outcome.error}))
    if not errors:
        return f"failed error-level checks: {named}; fix the file and land it again, or release it"
    reason = f"failed error-level checks: {named}; " if named else ""
    return (
        f"{reason}{UNVALIDATED}: {errors}; the next run validates it again; release it once "
        "checked, or land a corrected file"
    )


# --- Dagster: one asset check per expectation, on the raw asset it guards -----------------

ERROR_SEMANTICS = (
    " Blocking: a new load that breaks it is held back on its own (ledger status 'blocked', "
    "listed in this check's metadata) while the other loads publish in the same run; the "
    "check then fails with severity WARN. It fails with severity ERROR, and so stops dbt and "
    "the publish, only when the gate could not do its job: a load could not be validated."
)
WARN_SEVERITY_SEMANTICS = (
    " Reported only: the check fails with severity WARN when a new load has findings; it "
    "never blocks a load or the run."
)


def asset_check_specs(entity: Entity, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            check.name,
            asset=asset_key,
            blocking=check.blocking,
            description=check.description
            + (ERROR_SEMANTICS if check.blocking else WARN_SEVERITY_SEMANTICS),
        )
        for check in SUITES[entity.name].checks
    ]


def asset_check_results(
    entity: Entity, asset_key: dg.AssetKey, outcomes: list[CheckOutcome]
) -> list[dg.AssetCheckResult]:
    """One result per check of the entity over this run's new loads."""
    by_check: dict[str, list[CheckOutcome]] = defaultdict(list)
    for outcome in outcomes:
        by_check[outcome.check_name].append(outcome)
    results = []
    for check in SUITES[entity.name].checks:
        mine = by_check[check.name]
        failed = sorted(outcome.load_id for outcome in mine if not outcome.passed)
        errors = sorted(outcome.load_id for outcome in mine if outcome.error)
        metadata: dict[str, Any] = {
            "new_loads": len(mine),
            "unexpected_rows": int(sum(outcome.observed_value or 0 for outcome in mine)),
        }
        if check.blocking:
            metadata["blocked_loads"] = failed
            metadata["could_not_validate"] = errors
            if errors:
                description = f"could not validate {len(errors)} load(s): {errors[0]} …"
            elif failed:
                description = f"blocked {len(failed)} load(s); the others publish"
            else:
                description = f"{len(mine)} new load(s) passed"
        else:
            metadata["loads_with_findings"] = failed
            description = (
                f"{len(failed)} load(s) with findings" if failed else f"{len(mine)} passed"
            )
        # Only a gate that could not do its job stops the run: a load it blocked is held back
        # on its own, and the check says so with a warning.
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check.name,
                passed=not failed,
                severity=dg.AssetCheckSeverity.ERROR
                if check.blocking and errors
                else dg.AssetCheckSeverity.WARN,
                description=description,
                metadata=metadata,
            )
        )
    return results


# --- GX plumbing -------------------------------------------------------------------------

_GX: Any = None
_GX_LOCK = threading.Lock()


def import_gx_in_background() -> None:
    """Start importing GX (3 s) while the loader's DuckDB statements run (they release the
    GIL): the gate's first validation then finds it imported. A `_gx()` that comes while the
    import runs waits for it (`_GX_LOCK`), so nothing is imported or declared to GX twice."""
    if _GX is None:
        threading.Thread(target=_gx, name="import-great-expectations", daemon=True).start()


def _gx() -> Any:
    """Great Expectations, imported once per process, on first use (by the background import
    or by the gate, whichever comes first; the other waits)."""
    global _GX
    with _GX_LOCK:
        if _GX is not None:
            return _GX
        import great_expectations as gx

        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        _EXPECTATIONS["UnexpectedRowsExpectation"] = _counting_unexpected_rows(gx)
        _GX = gx
        return _GX


# The gate's own subclasses of GX expectations, by the name data_tests/ gives (made on import).
_EXPECTATIONS: dict[str, Any] = {}


def _counting_unexpected_rows(gx: Any) -> Any:
    """GX's UnexpectedRowsExpectation runs its query twice: once to count the rows, once to
    fetch them all, which only result format COMPLETE shows. The gate asks for SUMMARY and
    takes samples per load from DuckDB, only when a check fails (`_unexpected_by_load`); this
    subclass asks GX for the count alone, so each SQL check scans the new loads once."""

    class ExpectQueryToReturnNoRows(gx.expectations.UnexpectedRowsExpectation):
        metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

        def _validate(self, metrics, runtime_configuration=None, execution_engine=None):
            count = metrics["unexpected_rows_query.row_count"]
            return {"success": count == 0, "result": {"observed_value": count}}

    return ExpectQueryToReturnNoRows


def _context(gx: Any, docs_dir: Path | None) -> Any:
    """An ephemeral GX context, in memory; with `docs_dir`, validation results and Data Docs
    go to disk there (nothing else: suites are rebuilt from `data_tests/` on every run, and
    the datasource holds a live connection, which no file can). No usage statistics, no
    progress bars."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        FilesystemStoreBackendDefaults,
        InMemoryStoreBackendDefaults,
    )

    stores = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    if docs_dir is not None:
        docs_dir.mkdir(parents=True, exist_ok=True)
        on_disk = FilesystemStoreBackendDefaults(root_directory=str(docs_dir))
        results = on_disk.validation_results_store_name
        stores.stores[results] = on_disk.stores[results]
        stores.data_docs_sites = on_disk.data_docs_sites
    config = DataContextConfig(
        store_backend_defaults=stores,
        analytics_enabled=False,
        progress_bars={"globally": False},
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _persistent_connection(cursor: duckdb.DuckDBPyConnection) -> Any:
    """The DB-API connection GX's SQLAlchemy engine uses: one DuckDB connection, kept open.

    SQLAlchemy ends every `with engine.connect()` by rolling back, and GX fetches a result
    only after that block; DuckDB's rollback discards the pending result, so every metric
    came back empty (GX issues #10738, #11579), even on a StaticPool. Here begin, commit,
    rollback and close are no-ops: GX only reads, DuckDB autocommits each statement, and the
    cursor is closed by its owner once the validation is done."""
    from duckdb_engine import ConnectionWrapper

    class Connection(ConnectionWrapper):
        def begin(self) -> None:
            pass

        def commit(self) -> None:
            pass

        def rollback(self) -> None:
            pass

        def close(self) -> None:
            pass

    return Connection(cursor)


def _raised(result: Any) -> str | None:
    """The exception message GX caught while evaluating an expectation, if any."""
    info = result.exception_info or {}
    if "raised_exception" in info:
        return _one_line(info.get("exception_message")) if info["raised_exception"] else None
    for nested in info.values():  # keyed by metric when a metric failed
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return _one_line(nested.get("exception_message"))
    return None


def _one_line(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 300 else text[:297] + "…"
