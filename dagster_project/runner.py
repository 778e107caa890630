"""Running the Dagster job in-process for the CLI, with progress a person can follow."""

from __future__ import annotations

import contextlib
import functools
import http.server
import logging
import shutil
import time
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

import duckdb
from rich.console import Console

from .errors import FILE_LINE, INTERRUPTED, RUN_START, error_line, interrupts_kept
from .local_server import serve_until_stopped
from .settings import DAGSTER_YAML, Settings

STEP_LABELS = {
    "ingest_exports": "ingest and gate the landed exports",
    "dbt_models": "dbt build (seeds, staging, intermediate, marts, tests) and docs",
    "serving__database": "publish serving.duckdb",
    "quality__report": "write the governance report",
}


@dataclass
class Outcome:
    success: bool
    run_id: str
    seconds: float
    started_at: datetime
    marts: int = 0
    published: bool = False
    failed_step: str | None = None
    error: str | None = None


class _ProgressHandler(logging.Handler):
    """Turns Dagster's event log into a few readable lines."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.DEBUG)
        self.console = console
        self.started: dict[str, float] = {}
        self.failures: list[tuple[str, str]] = []
        self.failed_checks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        label = STEP_LABELS.get(step, step)
        if event is None:
            # A step's warning is shown, and the run's own (its resources', as they start),
            # except the ingest's lines per file (the summary lists the files to look at);
            # Dagster's about steps that never started are not.
            message = meta.get("orig_message") or record.getMessage()
            shown = (not step or step in self.started) and not getattr(record, FILE_LINE, False)
            if record.levelno >= logging.WARNING and shown:
                self.console.print(f"    [yellow]warning[/yellow] {label or RUN_START}: {message}")
            return
        kind = event.event_type_value
        if kind == "STEP_START":
            self.started[step] = time.perf_counter()
            self.console.print(f"[bold]▸[/bold] {label} …")
        elif kind == "STEP_SUCCESS":
            seconds = time.perf_counter() - self.started.get(step, time.perf_counter())
            self.console.print(f"[green]✓[/green] {label} [dim]{seconds:.1f}s[/dim]")
        elif kind in ("STEP_FAILURE", "RESOURCE_INIT_FAILURE"):
            message = error_line(event.event_specific_data.error)
            label = label or RUN_START
            self.failures.append((step or label, message))
            self.console.print(f"[red]✗[/red] {label}: {message}")
        elif kind == "STEP_SKIPPED":
            why = "a blocking check failed" if self.failed_checks else "nothing new upstream"
            self.console.print(f"[dim]–[/dim] {label}: skipped ({why})")
        elif kind == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                name = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                if (
                    getattr(evaluation.severity, "value", None) == "WARN"
                ):  # reported, blocks nothing
                    self.console.print(f"    [yellow]check warned[/yellow] {name}")
                else:
                    self.failed_checks.append(name)
                    self.console.print(f"    [red]check failed[/red] {name}")


def _no_unevaluated_checks(record: logging.LogRecord) -> bool:
    """When dbt has nothing to build it reports no test results, and Dagster warns once per
    dbt test that the publish step goes on without it: expected, and hundreds of lines."""
    return "emitted no result in step" not in record.getMessage()


def up_to_date(settings: Settings) -> datetime | None:
    """When the last publish is current, its time; else None and a run has work to do.

    Current means: every landed file is in the ledger (known by name and bytes; a file whose
    size and modification time are as when it was hashed is not read again; a file outside
    the export folders, by its path), and the loads,
    the dbt project and the pseudonym key are what the last build and publish were made from,
    exactly the test the job's dbt step makes. Anything unknown (no warehouse yet, a writer
    holding it) means "run". Dagster is not imported: a run with nothing to do costs the
    interpreter and a few queries.
    """
    from .defs.ingest.contract import ENTITIES
    from .defs.ingest.files import (
        FileStat,
        cached_digests,
        known_digest,
        landed_files,
        recorded_strays,
        stray_files,
    )
    from .defs.publish.serving import build_is_current, build_state, project_state

    if not (settings.warehouse_path.exists() and settings.serving_path.exists()):
        return None
    try:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error:
        return None
    with con:
        try:
            for entity in ENTITIES.values():
                cached = cached_digests(con, entity)
                known = set(
                    con.execute(
                        "select file_name, file_sha256 from quality.load_ledger where entity = ?",
                        [entity.name],
                    ).fetchall()
                )
                for path in landed_files(settings.landing / entity.name):
                    digest = known_digest(path.name, FileStat.of(path), cached)
                    if digest is None or (path.name, digest) not in known:
                        return None
            strays = stray_files(settings.landing, list(ENTITIES), skip=settings.home)
            if {stray.name for stray in strays} - recorded_strays(con):
                return None
            project = project_state()
            state = build_state(con, project)
            basis = settings.build_basis_path
            if not build_is_current(con, state, basis, project, settings.pii_key()):
                return None
            [published_at] = con.execute(
                "select max(published_at) from quality.publish_log"
            ).fetchone()
        except duckdb.Error:
            return None
    return published_at


def run_job(settings: Settings, console: Console, *, full_refresh: bool = False) -> Outcome:
    """Execute the `trustwh` job in this process against the settings' home and landing;
    with `full_refresh`, dbt rebuilds every model (the dbt step's config)."""
    import dagster as dg

    from .definitions import defs  # parses the dbt project when it changed

    handler = _ProgressHandler(console)

    @dg.logger
    def progress(_init_context):
        log = logging.getLogger("trustwh.progress")
        log.handlers = [handler]
        log.setLevel(logging.DEBUG)
        log.propagate = False
        return log

    logging.getLogger("dagster._core.execution.plan.active").addFilter(_no_unevaluated_checks)
    job = defs.resolve_job_def("trustwh").with_logger_defs({"progress": progress})
    started_at = datetime.now().replace(microsecond=0)
    started = time.perf_counter()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.log_dir / f"run-{started_at:%Y%m%dT%H%M%S}.log"
    console.print(f"[dim]dbt's own log of this run: {log_path}[/dim]")
    # dagster-dbt echoes every dbt log line to stdout; keep those in the run's log file.
    with (
        log_path.open("w", encoding="utf-8") as log_file,
        contextlib.redirect_stdout(log_file),
        interrupts_kept() as signals,
        open_instance(settings) as instance,
    ):
        run_config = {"loggers": {"progress": {}}}
        if full_refresh:
            run_config["ops"] = {"dbt_models": {"config": {"full_refresh": True}}}
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config=run_config
        )
    outcome = Outcome(
        success=result.success,
        run_id=result.run_id,
        seconds=time.perf_counter() - started,
        started_at=started_at,
    )
    materialized = [
        event.asset_key.path
        for event in result.all_events
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key
    ]
    outcome.marts = sum(1 for path in materialized if path[0] == "marts")
    # A run stopped after its publish (in Dagster's own work once the steps ended) still
    # swapped serving.duckdb in.
    outcome.published = ["serving", "database"] in materialized
    if result.success:
        return outcome
    if handler.failures:
        outcome.failed_step, outcome.error = handler.failures[0]
    elif signals:  # stopped between or after the steps: no step failed of it
        outcome.failed_step, outcome.error = "the run", INTERRUPTED
    else:
        outcome.failed_step, outcome.error = "the run", "see the Dagster run log"
    return outcome


def open_instance(settings: Settings):
    """The Dagster instance in HOME/dagster (what `make dev` opens), with the event log that
    keeps its SQLite connections open for the run (event_log.py). A home without a
    `dagster.yaml` gets the project's (one run at a time: `dagster_project/dagster.yaml`)."""
    import dagster as dg

    from .event_log import instance_ref

    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    configured = settings.dagster_home / "dagster.yaml"
    if not configured.exists():
        shutil.copyfile(DAGSTER_YAML, configured)
    return dg.DagsterInstance.from_ref(instance_ref(settings.dagster_home))


def ledger_summary(
    settings: Settings, since: datetime
) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Files by status and rows per entity landed since `since`, and lines for the files a
    person must look at (blocked, rejected)."""
    files: dict[str, dict[str, int]] = defaultdict(dict)
    attention: list[str] = []
    if not settings.warehouse_path.exists():
        return files, attention
    try:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error as error:
        return files, [f"the ledger could not be read: {str(error).splitlines()[0]}"]
    with con:
        if not con.execute(
            "select 1 from duckdb_tables() where schema_name = 'quality' "
            "and table_name = 'load_ledger'"
        ).fetchall():
            return files, attention  # a run stopped before its first load
        rows = con.execute(
            """
            select entity, status, count(*), sum(rows_loaded), sum(rows_quarantined)
            from quality.load_ledger where loaded_at >= ? group by all order by all
            """,
            [since],
        ).fetchall()
        for entity, status, count, loaded, quarantined in rows:
            counts = files[entity]
            counts[status] = count
            counts["rows_loaded"] = counts.get("rows_loaded", 0) + int(loaded or 0)
            counts["rows_quarantined"] = counts.get("rows_quarantined", 0) + int(quarantined or 0)
        for entity, name, status, reason in con.execute(
            """
            select entity, file_name, status, reason from quality.load_ledger
            where loaded_at >= ? and status in ('blocked', 'rejected') order by all
            """,
            [since],
        ).fetchall():
            attention.append(f"{entity}/{name} {status}: {reason}")
    return dict(files), attention


# The docs site and its data; not the compiled SQL, logs and parse cache dbt leaves beside them.
DOCS_FILES = ("index.html", "manifest.json", "catalog.json", "static_index.html")


class _DocsHandler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):  # type: ignore[override]  # both GET and HEAD pass here
        name = urllib.parse.urlsplit(self.path).path.lstrip("/")
        if name not in ("", *DOCS_FILES):
            self.send_error(404, "not part of the docs site")
            return None
        return super().send_head()

    def log_message(self, *args: object) -> None:
        pass


def serve_docs(settings: Settings, port: int, console: Console) -> int:
    """Serve the dbt docs `trustwh run` generated into HOME/docs on 127.0.0.1 until Ctrl-C."""
    if not (settings.docs_path / "index.html").is_file():
        console.print(
            f"[red]No dbt docs in {settings.docs_path} yet.[/red] Each `trustwh run` that "
            "builds generates them: run `trustwh run` first (or pass the right --home)."
        )
        return 2
    handler = functools.partial(_DocsHandler, directory=str(settings.docs_path))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        console.print(f"[red]Cannot listen on 127.0.0.1:{port}:[/red] {error.strerror}; try --port")
        return 2
    with server:
        console.print(
            f"dbt docs of {settings.home} on http://127.0.0.1:{server.server_port}/ "
            "(Ctrl-C to stop)"
        )
        serve_until_stopped(server)
    return 0
