"""Dagster's SQLite event log, with one SQLAlchemy engine per database file for a process.

`SqliteEventLogStorage` builds a new engine (and a new SQLite connection) for every write, and
a run writes several per event: the run's own database, then the cross-run index for asset
and check events. A `trustwh run` stores ~500 events with nothing to do and ~1,300 on a
build; with nothing to do it spent 8.4 s in Dagster, 4.3 s with this class. This class keeps
an engine per file, whose pool keeps its connections open; what is written, and where, is
unchanged, so `dagster dev` reads the same history with Dagster's own class.

Used by the instance of `trustwh run` (runner.py), a short process that writes one run. The
pool holds a run database's connections until the instance is disposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as db
import yaml
from dagster._core.instance.ref import InstanceRef
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # Before Dagster's __init__, which connects.
        self._engines: dict[str, Engine] = {}
        self._tables: set[str] = set()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                # SQLAlchemy pools a file's connections and lets any thread use them
                # (`check_same_thread` off); `_db_lock` keeps one user at a time, as before.
                engine = db.create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
                db.event.listen(engine, "connect", _fast_commits)
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                self._engines[shard] = engine
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster asks before writing each asset and check event, with an engine of its own
        each time. Tables of the index are only ever added (by `dagster instance migrate`), so
        a table found stays found. (Not through `_connect`: Dagster asks while it holds it.)"""
        if table_name not in self._tables and super().has_table(table_name):
            self._tables.add(table_name)
        return table_name in self._tables

    def dispose(self) -> None:
        super().dispose()
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()


def _fast_commits(connection: Any, _record: Any) -> None:
    """Every event is a commit. Dagster keeps these files in SQLite's write-ahead log, whose
    default (`synchronous = full`) still waits for the disk on each commit: a run with nothing
    to do spent 0.8 s of its 3.6 s there. With `normal`, a commit is an append, synced at
    checkpoints: a power cut can lose the last events written, never corrupt the file."""
    connection.execute("pragma synchronous = normal")


# Keys of `dagster.yaml` that choose where the instance stores its history.
STORAGE_KEYS = frozenset({"storage", "run_storage", "event_log_storage", "schedule_storage"})


def instance_ref(dagster_home: Path) -> InstanceRef:
    """Dagster's instance of the home, its default SQLite event log swapped for this class
    with the default's configuration (the same files). When the home's `dagster.yaml` chooses
    the storage (another database, say), the instance is used as it is configured."""
    default = InstanceRef.from_dir(str(dagster_home))
    events = default.event_storage_data
    chosen = STORAGE_KEYS & set(dagster_config(dagster_home))
    if chosen or events is None or events.class_name != SqliteEventLogStorage.__name__:
        return default
    # Through `from_dir` again, not `default._replace(event_storage_data=...)`: the ref's
    # composite `storage_data`, which `from_dir` derives from its overrides, takes precedence.
    swapped = {
        "module": __name__,
        "class": PooledSqliteEventLogStorage.__name__,
        "config": dict(events.config_dict),
    }
    return InstanceRef.from_dir(str(dagster_home), overrides={"event_log_storage": swapped})


def dagster_config(dagster_home: Path) -> dict[str, Any]:
    """The home's `dagster.yaml`, as a mapping (empty when there is none)."""
    path = dagster_home / "dagster.yaml"
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}
