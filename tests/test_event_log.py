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


def test_a_new_home_queues_runs_launched_while_one_is_in_progress(tmp_path):
    """One run at a time builds a home: the instance's run queue starts one at a time, so a
    run launched from the UI meanwhile waits rather than failing at the home's lock."""
    settings = Settings.load(home=tmp_path / "home")
    with open_instance(settings) as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
    # What `dagster dev` opens for the home (`make dev`) is configured the same.
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_the_home_s_dagster_yaml_is_kept_as_it_stands(tmp_path):
    settings = Settings.load(home=tmp_path / "home")
    settings.dagster_home.mkdir(parents=True)
    configured = settings.dagster_home / "dagster.yaml"
    configured.write_text("telemetry:\n  enabled: false\n")
    with open_instance(settings) as instance:
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs != 1
        assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
    assert configured.read_text() == "telemetry:\n  enabled: false\n"
    # Storage the operator chose is used as configured: the event log is not swapped.
    history = tmp_path / "elsewhere"
    configured.write_text(f"storage:\n  sqlite:\n    base_dir: {history}\n")
    with open_instance(settings) as instance:
        assert type(instance.event_log_storage).__name__ == "SqliteEventLogStorage"
        dg.materialize([numbers], instance=instance)
    assert (history / "history" / "runs.db").exists()
