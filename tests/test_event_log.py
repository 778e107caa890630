"""The Dagster instance of `trustwh run`: its event log opens each SQLite file once, and what
it writes is the history Dagster's own classes read (`make dev`, the bench)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from sqlalchemy.pool import Pool

from dagster_project.runner import open_instance
from dagster_project.settings import Settings


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="numbers")])
def numbers():
    yield dg.Output(3)
    yield dg.AssetCheckResult(passed=True)


@dg.asset(deps=[numbers])
def doubled() -> int:
    return 6


@pytest.fixture
def connections():
    """SQLite files by how many connections were opened to them."""
    opened: Counter[str] = Counter()

    def count(dbapi_connection, _record) -> None:
        (_, _, path), *_ = dbapi_connection.execute("pragma database_list").fetchall()
        opened[Path(path).name] += 1

    sqlalchemy.event.listen(Pool, "connect", count)
    yield opened
    sqlalchemy.event.remove(Pool, "connect", count)


def test_a_run_opens_each_event_database_once(tmp_path, connections):
    settings = Settings.load(home=tmp_path / "home")
    with open_instance(settings) as instance:
        connections.clear()  # the instance has created the index database
        result = dg.materialize([numbers, doubled], instance=instance)
        opened = dict(connections)
        # A commit does not wait for the disk: the write-ahead log is synced at checkpoints.
        with instance.event_log_storage._connect(result.run_id) as connection:
            assert connection.exec_driver_sql("pragma journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("pragma synchronous").scalar() == 1  # normal
    assert result.success
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert len(instance.all_logs(result.run_id)) > 20
    # Dagster's own class opens the run's file once per event, and the index two or three times
    # per asset or check event. Here: creating the run's file takes a second connection (for
    # its table names), and the index is asked once for each of two tables.
    assert opened[f"{result.run_id}.db"] <= 2, opened
    assert opened["index.db"] <= 3, opened


def test_dagster_reads_the_history_the_run_wrote(tmp_path):
    settings = Settings.load(home=tmp_path / "home")
    with open_instance(settings) as instance:
        result = dg.materialize([numbers, doubled], instance=instance)
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        run = instance.get_run_by_id(result.run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        events = instance.all_logs(result.run_id)
        assert sum(event.dagster_event_type == "STEP_SUCCESS" for event in events) == 2
        for key in ("numbers", "doubled"):
            records = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
            assert [record.run_id for record in records] == [result.run_id]
        check = dg.AssetCheckKey(dg.AssetKey("numbers"), "positive")
        history = instance.event_log_storage.get_asset_check_execution_history(check, limit=1)
        assert [record.run_id for record in history] == [result.run_id]


def test_a_dagster_yaml_in_the_home_is_used_as_it_stands(tmp_path):
    settings = Settings.load(home=tmp_path / "home")
    settings.dagster_home.mkdir(parents=True)
    (settings.dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with open_instance(settings) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert instance.get_settings("telemetry") == {"enabled": False}
    (settings.dagster_home / "dagster.yaml").unlink()
    with open_instance(settings) as instance:
        assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
