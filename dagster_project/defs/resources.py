"""Resources: where the warehouse lives and how to open it."""

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from ..home import lock_home, open_home, unlock_home
from ..settings import Settings
from .dbt.warm import WarmDbt, start_warm_dbt
from .runs import DIED, builds_dbt, end_dead_runs


class WarehouseResource(dg.ConfigurableResource):
    """The working DuckDB database and the landing folder. Unset fields come from
    `Settings.load()` (env vars, then defaults) when a run uses them."""

    home: str | None = Field(default=None, description="warehouse home (env TRUSTWH_HOME)")
    landing: str | None = Field(default=None, description="landing folder (TRUSTWH_LANDING)")
    quarantine_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of a load's rows quarantined above which it is blocked, from 0 to 1 "
        "(0.05 for 5%; env TRUSTWH_QUARANTINE_THRESHOLD)",
    )

    _run_lock: int | None = PrivateAttr(default=None)
    _open: list[duckdb.DuckDBPyConnection] = PrivateAttr(default_factory=list)
    _warm_dbt: WarmDbt | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Every run, from the CLI or the Dagster UI, passes here once: it writes private
        # working files, and holds the home for itself until it ends. A sensor's tick, which
        # only reads, does neither.
        if context.run is None:
            return
        home = self.settings().home
        open_home(home)
        self._run_lock = lock_home(home)
        if context.instance is not None:
            # With the lock, no other run is building: any Dagster still records as in
            # progress, and not just starting, died without ending.
            for run_id in end_dead_runs(context.instance, holding=context.run.run_id):
                context.log.warning(DIED.format(run_id))
        # dbt imports and parses beside the ingest, for the build to come (dbt/warm.py).
        if builds_dbt(context.run):
            self._warm_dbt = start_warm_dbt(self.settings())

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._warm_dbt is not None:
            self._warm_dbt.stop()
            self._warm_dbt = None
        # A step interrupted between two of its results is never resumed: its connection
        # would stay open, and the CLI's summary could not read the ledger.
        while self._open:
            close_connection(self._open.pop())
        if self._run_lock is not None:
            unlock_home(self._run_lock)
            self._run_lock = None

    def settings(self) -> Settings:
        return Settings.load(
            home=self.home, landing=self.landing, quarantine_threshold=self.quarantine_threshold
        )

    def warm_dbt_environment(self) -> dict[str, str]:
        """What hands this run's dbt build to its warm dbt; empty when it has none."""
        return self._warm_dbt.environment() if self._warm_dbt is not None else {}

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection to the working database, closed on exit so the dbt
        process that runs next can open the file."""
        settings = self.settings()
        settings.temp_dir.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(
            str(settings.warehouse_path),
            config={
                "memory_limit": settings.memory_limit,
                "threads": settings.threads,
                "temp_directory": str(settings.temp_dir),
                # A load commits once per batch of files: at the default 16MB each commit
                # checkpointed, about a fifth of the ingest (bench/results); once, on close,
                # costs a fraction of that.
                "checkpoint_threshold": "1GB",
            },
        )
        self._open.append(con)
        try:
            yield con
        finally:
            close_connection(con)
            if con in self._open:  # not when the run's teardown closed it already
                self._open.remove(con)


def close_connection(con: duckdb.DuckDBPyConnection) -> None:
    """Close a DuckDB connection, even one whose last statement a Ctrl-C interrupted: DuckDB
    1.5 then left the database file unopenable in this process (the next `duckdb.connect`
    waited forever) unless the connection ran one more statement first."""
    with contextlib.suppress(duckdb.Error, RuntimeError):
        con.execute("select 1")
    con.close()
