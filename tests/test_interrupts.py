"""Ctrl-C stops a run wherever it comes: promptly, saying so, with nothing half-loaded and
no verdict made of it; the next run goes on from what was stored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from dagster_project import cli
from dagster_project.errors import interrupted, interrupts_kept, noting_interrupts
from dagster_project.home import home_busy
from dagster_project.runner import ledger_summary
from dagster_project.sample_data.generate import generate
from dagster_project.settings import Settings

from .runs import interrupt_run, mart_fingerprints, query, trustwh


def _signal_soon(seconds: float = 0.1) -> threading.Timer:
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_a_query_stopped_by_ctrl_c_is_known_for_an_interrupt():
    con = duckdb.connect()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = _signal_soon(0.3)
        with pytest.raises(BaseException) as raised:
            con.execute("select count(*) from range(2000000000) t(x) where x % 7 = 3").fetchall()
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
        con.close()
    # DuckDB raises its own error, caused by the handler's: code that catches broad errors
    # must tell it apart.
    assert interrupted(raised.value)
    assert not interrupted(RuntimeError("Query interrupted"))


def test_a_ctrl_c_that_library_code_swallows_is_raised_when_it_returns():
    # Library code (here: code compiled outside the project) that catches every error, as
    # GX's metric queries do, must not lose the Ctrl-C.
    swallowing = compile(
        "try:\n    time.sleep(0.5)\nexcept BaseException:\n    swallowed = True\n",
        "<library>",
        "exec",
    )
    scope = {"time": time, "swallowed": False}
    finished = False
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        timer = _signal_soon()
        with pytest.raises(KeyboardInterrupt), noting_interrupts():
            exec(swallowing, scope)
            finished = True
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert finished
    assert not scope["swallowed"]  # it was noted there, and raised only on the way out


def test_ctrl_c_before_the_run_starts_is_a_message_and_exit_130(tmp_path, monkeypatch):
    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "run_job", stopped)
    (tmp_path / "landing").mkdir()
    code, output = trustwh("run", "--landing", tmp_path / "landing", "--home", tmp_path / "h")
    assert code == 130
    assert "run: stopped by Ctrl-C." in output and "Traceback" not in output


def test_the_summary_of_a_run_stopped_before_its_first_load_reads_no_ledger(tmp_path):
    settings = Settings.load(home=tmp_path / "home", landing=tmp_path / "landing")
    settings.home.mkdir()
    duckdb.connect(str(settings.warehouse_path)).close()  # created, nothing in it yet
    assert ledger_summary(settings, since=datetime(2000, 1, 1)) == ({}, [])


@pytest.mark.slow
def test_ctrl_c_anywhere_in_the_ingest_stops_the_run_and_the_next_run_goes_on(tmp_path):
    landing = tmp_path / "landing"
    generate(landing, scale=2, months=6)
    home = tmp_path / "home"
    # After the ingest step starts: at once (opening the database, creating the tables),
    # while files parse, while the gate validates (GX), and later.
    for delay in (0.0, 0.4, 1.0, 2.0, 3.5):
        code, output = interrupt_run(landing, home, at="▸ ingest", delay=delay)
        flat = " ".join(output.split())
        assert code in (1, 130), output
        assert "interrupted (Ctrl-C" in flat or "stopped by Ctrl-C" in flat, output
        assert "Traceback" not in output and "Exception ignored" not in output, output
        assert home_busy(home) is None
        assert not (home / "serving.duckdb").exists()
        assert _verdicts(home) == []  # the interrupt is no verdict on a load
    code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    code, output = trustwh("run", "--landing", landing, "--home", tmp_path / "clean")
    assert code == 0, output
    assert mart_fingerprints(home / "serving.duckdb") == mart_fingerprints(
        tmp_path / "clean" / "serving.duckdb"
    )


def _verdicts(home: Path) -> list[tuple]:
    """The loads blocked or rejected in a home (the generated landing has none to be)."""
    warehouse = home / "warehouse.duckdb"
    if not warehouse.exists() or not query(
        warehouse, "select 1 from duckdb_tables() where table_name = 'load_ledger'"
    ):
        return []
    return query(
        warehouse,
        "select file_name, status, reason from quality.load_ledger "
        "where status in ('blocked', 'rejected')",
    )


def test_an_interrupt_python_would_print_and_drop_is_signalled_again():
    # Dagster's handler raises wherever the step is: in a garbage collector's callback or a
    # `__del__`, Python printed it as "Exception ignored" and the run went on to publish.
    class Dropping:
        def __del__(self):
            raise KeyboardInterrupt

    finished = False
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt), interrupts_kept() as seen:
            Dropping()
            time.sleep(1)
            finished = True
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not finished
    assert seen == [signal.SIGINT]


def test_the_signals_a_handler_took_without_raising_are_known(capsys):
    # Dagster's own handler between steps notes a Ctrl-C and fails the run with no step
    # failed: the CLI must still say it was interrupted.
    noted = []
    previous = signal.signal(signal.SIGTERM, lambda signo, frame: noted.append(signo))
    try:
        with interrupts_kept() as seen:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert noted == seen == [signal.SIGTERM]


def test_sqlalchemy_logs_no_traceback_of_an_interrupt_it_raises_on():
    # In a process of its own: a run imports SQLAlchemy only when Dagster's instance opens,
    # inside `interrupts_kept`, and its pool's loggers did not exist yet when it started.
    script = """
import logging, sys
from dagster_project.errors import interrupts_kept
assert "sqlalchemy" not in sys.modules
with interrupts_kept():
    import sqlalchemy.pool
    pool = logging.getLogger("sqlalchemy.pool.impl.NullPool")
    for error in (KeyboardInterrupt, ValueError):
        try:
            raise error("disk I/O error")
        except error:
            pool.error("Exception closing connection", exc_info=True)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ValueError: disk I/O error" in done.stderr
    assert "KeyboardInterrupt" not in done.stderr
