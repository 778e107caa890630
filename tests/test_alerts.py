"""Alerts: a JSON line in HOME/logs/alerts.log and a POST to the webhook from settings,
tested against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.remote_origin import RegisteredCodeLocationOrigin
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from dagster_project.defs import runs
from dagster_project.defs.ingest.tables import create_tables
from dagster_project.defs.quality import alerts
from dagster_project.defs.quality.alerts import (
    LOAD_BLOCKED,
    RUN_FAILURE,
    blocked_load_alert,
    make_alert,
    run_failure_alert,
    send_alert,
)
from dagster_project.defs.resources import WarehouseResource
from dagster_project.home import HomeBusy, home_busy, lock_home, unlock_home
from dagster_project.settings import ENV_ALERT_WEBHOOK


class Webhook:
    """A local HTTP server that records what is POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        self.headers: list[str] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                hook.headers.append(self.headers["Content-Type"])
                self.send_response(status)
                self.end_headers()

            def log_message(self, format, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_alert_names_its_time_kind_subject_and_reason():
    alert = make_alert(
        LOAD_BLOCKED, "quarantined 4 of 24 rows", at=datetime(2024, 5, 1, 8, 0), load_id="x-1"
    )
    assert alert == {
        "time": "2024-05-01T08:00:00",
        "kind": "load_blocked",
        "load_id": "x-1",
        "reason": "quarantined 4 of 24 rows",
    }


def test_an_alert_is_logged_and_posted_to_the_webhook(tmp_path, webhook):
    log = tmp_path / "logs" / "alerts.log"
    first = make_alert(RUN_FAILURE, "dbt build failed: 订单 <x>", run_id="abc123")
    second = make_alert(RUN_FAILURE, "again", run_id="def456")
    assert send_alert(first, log, webhook.url) is True
    assert send_alert(second, log, webhook.url) is True
    assert _lines(log) == webhook.received == [first, second]
    assert webhook.headers[0].startswith("application/json")


def test_without_a_webhook_the_alert_is_only_logged(tmp_path):
    log = tmp_path / "alerts.log"
    assert send_alert(make_alert(RUN_FAILURE, "boom", run_id="r"), log, None) is True
    assert [line["reason"] for line in _lines(log)] == ["boom"]


def test_a_webhook_that_fails_is_logged_never_raised(tmp_path, caplog):
    log = tmp_path / "alerts.log"
    broken = Webhook(status=500)
    try:
        assert send_alert(make_alert(RUN_FAILURE, "a", run_id="r"), log, broken.url) is False
    finally:
        broken.close()
    # Nothing listens there any more: connection refused.
    assert send_alert(make_alert(RUN_FAILURE, "b", run_id="r"), log, broken.url) is False
    assert send_alert(make_alert(RUN_FAILURE, "c", run_id="r"), log, "not a url") is False
    assert [line["reason"] for line in _lines(log)] == ["a", "b", "c"]
    assert "could not post alert" in caplog.text


def _warehouse_with_blocked_load(home: Path, load_id: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        create_tables(con)
        con.execute(
            "insert into quality.load_ledger (load_id, entity, file_name, file_sha256, "
            "export_date, status, rows_read, rows_loaded, rows_quarantined, reason, loaded_at) "
            "values (?, 'orders', ?, 'ab', date '2024-05-01', 'blocked', 24, 20, 4, "
            "'quarantined 4 of 24 rows (16.7%), above the 5% threshold', now())",
            [load_id, f"{load_id}.csv"],
        )


def _tick(home: Path, cursor: str | None, instance: dg.DagsterInstance):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"warehouse": WarehouseResource(home=str(home))},
    ) as context:
        result = blocked_load_alert(context)
        return result, context.cursor


def test_the_blocked_load_sensor_alerts_each_newly_blocked_load_once(
    tmp_path, webhook, monkeypatch
):
    monkeypatch.setenv(ENV_ALERT_WEBHOOK, webhook.url)
    home = tmp_path / "home"
    log = home / "logs" / "alerts.log"
    with dg.DagsterInstance.ephemeral() as instance:
        result, cursor = _tick(home, None, instance)
        assert isinstance(result, dg.SkipReason) and not log.exists()  # nothing built yet

        _warehouse_with_blocked_load(home, "orders_20240501-aa")
        _, cursor = _tick(home, cursor, instance)
        [line] = _lines(log)
        assert line["kind"] == "load_blocked" and line["load_id"] == "orders_20240501-aa"
        assert line["file_name"] == "orders_20240501-aa.csv" and "16.7%" in line["reason"]
        assert webhook.received == [line]

        _, cursor = _tick(home, cursor, instance)  # the same load: no second alert
        assert len(_lines(log)) == 1

        _warehouse_with_blocked_load(home, "orders_20240502-bb")
        _, cursor = _tick(home, cursor, instance)
        assert [line["load_id"] for line in _lines(log)] == [
            "orders_20240501-aa",
            "orders_20240502-bb",
        ]
        assert json.loads(cursor) == ["orders_20240501-aa", "orders_20240502-bb"]


def test_a_run_starting_during_the_sensor_s_read_waits_for_it(tmp_path, monkeypatch):
    """The sensor's read-only open of the working database would make a run starting in that
    instant fail to open it: the run's lock waits until the read is done."""
    home = tmp_path / "home"
    _warehouse_with_blocked_load(home, "orders_20240501-aa")
    unlock_home(lock_home(home))  # a run has built the home before
    tried = []
    connect = duckdb.connect

    def connect_while_a_run_starts(*args, **kwargs):
        try:
            unlock_home(lock_home(home, wait=0))
            tried.append("the run took the lock during the read")
        except HomeBusy:
            tried.append("the run waited")
        return connect(*args, **kwargs)

    monkeypatch.setattr(alerts.duckdb, "connect", connect_while_a_run_starts)
    with dg.DagsterInstance.ephemeral() as instance:
        _tick(home, None, instance)
    assert tried == ["the run waited"]
    assert [line["load_id"] for line in _lines(home / "logs" / "alerts.log")] == [
        "orders_20240501-aa"
    ]
    assert home_busy(home) is None  # and it is free once the read is done


def test_the_blocked_load_sensor_skips_a_tick_while_a_build_holds_the_database(tmp_path):
    home = tmp_path / "home"
    _warehouse_with_blocked_load(home, "orders_20240501-aa")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"con = duckdb.connect({str(home / 'warehouse.duckdb')!r})\n"
            "print('holding', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with dg.DagsterInstance.ephemeral() as instance:
            result, cursor = _tick(home, None, instance)
    finally:
        holder.communicate("", timeout=30)
    assert isinstance(result, dg.SkipReason) and "busy" in result.skip_message
    assert cursor is None  # the next tick catches up
    assert not (home / "logs" / "alerts.log").exists()


@dg.op
def _explode():
    raise RuntimeError("the dbt build failed: model marts.x")


@dg.job
def _failing_job():
    _explode()


def _sense_failure(result, instance, home) -> None:
    """The run-failure sensor's tick on the failed run of `result`."""
    failure = next(
        event for event in result.all_events if event.event_type_value == "PIPELINE_FAILURE"
    )
    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"warehouse": WarehouseResource(home=str(home))},
    ) as context:
        run_failure_alert(context.for_run_failure())


def test_a_failed_run_is_alerted_with_its_run_id(tmp_path, webhook, monkeypatch):
    monkeypatch.setenv(ENV_ALERT_WEBHOOK, webhook.url)
    home = tmp_path / "home"
    with dg.DagsterInstance.ephemeral() as instance:
        result = _failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        _sense_failure(result, instance, home)
    [line] = _lines(home / "logs" / "alerts.log")
    assert line["kind"] == "run_failure" and line["run_id"] == result.run_id
    assert line["job"] == "_failing_job"
    # Which step failed and why, not Dagster's "Execution of run … failed".
    assert line["reason"] == "_explode: the dbt build failed: model marts.x"
    assert webhook.received == [line]


@dg.asset(key=["marts", "store_daily_gmv"])
def _exploding_mart():
    raise RuntimeError("the dbt build failed: model marts.store_daily_gmv")


def test_a_failed_selection_launched_in_the_ui_is_alerted_by_what_it_selected(tmp_path):
    """Dagster runs a selection of assets as its hidden `__ASSET_JOB`: the alert names the
    assets instead."""
    home = tmp_path / "home"
    job = dg.Definitions(assets=[_exploding_mart]).resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey(["marts", "store_daily_gmv"])],
        )
        assert result.dagster_run.job_name == "__ASSET_JOB"
        _sense_failure(result, instance, home)
    [line] = _lines(home / "logs" / "alerts.log")
    assert line["job"] == "a selection of assets: marts/store_daily_gmv"


def test_a_run_of_trustwh_run_that_died_is_alerted_by_the_daemon(tmp_path, monkeypatch):
    """`trustwh run` executes in-process: its runs belong to no code location, and Dagster's
    run-failure sensors watch their own code location's runs unless told otherwise. A run
    killed mid-build, ended by a later tick (defs/runs.py), is such a run."""
    home = tmp_path / "home"
    monkeypatch.setattr(runs, "START_GRACE", timedelta(0))
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None) -> str | None:
            # As the daemon evaluates it: in the project's code location.
            with dg.SensorEvaluationContext(
                instance_ref=None,
                last_tick_completion_time=None,
                last_run_key=None,
                cursor=cursor,
                repository_name="__repository__",
                instance=instance,
                resources={"warehouse": WarehouseResource(home=str(home))},
                code_location_origin=RegisteredCodeLocationOrigin("dagster_project.definitions"),
            ) as context:
                run_failure_alert.evaluate_tick(context)
                return context.cursor

        cursor = tick(None)  # the first tick only sets where the sensor starts
        dead = DagsterRun(job_name="trustwh", status=DagsterRunStatus.STARTED)
        instance.add_run(dead)
        assert runs.end_dead_runs(instance) == [dead.run_id]
        tick(cursor)
    [line] = _lines(home / "logs" / "alerts.log")
    assert line["kind"] == RUN_FAILURE and line["run_id"] == dead.run_id
    assert line["reason"].startswith("its process ended before the run did"), line


def test_a_tick_that_ends_a_dead_run_says_so_in_its_log(monkeypatch, caplog):
    """The sensors' ticks end dead runs too (past START_GRACE); the run after them then has
    none left to end and to say so: the tick's log says it."""
    monkeypatch.setattr(runs, "START_GRACE", timedelta(0))
    log = logging.getLogger("a sensor's tick")
    with dg.instance_for_test() as instance, caplog.at_level(logging.WARNING, log.name):
        dead = DagsterRun(job_name="trustwh", status=DagsterRunStatus.STARTED)
        instance.add_run(dead)
        assert runs.run_starting(instance, log) is False
        assert instance.get_run_by_id(dead.run_id).status == DagsterRunStatus.FAILURE
    assert caplog.messages == [f"run {dead.run_id} had died without ending: marked failed"]
