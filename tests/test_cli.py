"""The `trustwh` command's exit: the code of `main`, with or without Python's teardown; and
what it says of a user's mistakes (a message and exit 2, never a traceback)."""

from __future__ import annotations

import os
import threading

import pytest

from dagster_project import cli


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    """`main` returning 3; what `entry` then calls instead of leaving the test's process."""
    calls: list[tuple[str, int | None]] = []

    def fast_exit(code: int) -> None:
        calls.append(("os._exit", code))
        raise Exited

    monkeypatch.setattr(cli, "main", lambda: 3)
    monkeypatch.setattr(cli.atexit, "_run_exitfuncs", lambda: calls.append(("atexit", None)))
    monkeypatch.setattr(cli.os, "_exit", fast_exit)
    return calls


def test_the_command_runs_the_exit_handlers_and_leaves_with_mains_code(exits, monkeypatch):
    # As in `trustwh`, where only the main thread is left; the suite may have others.
    monkeypatch.setattr(cli.threading, "enumerate", lambda: [threading.main_thread()])
    with pytest.raises(Exited):
        cli.entry()
    assert exits == [("atexit", None), ("os._exit", 3)]


def test_a_thread_still_running_gets_the_usual_exit_which_waits_for_it(exits):
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=False)
    worker.start()
    try:
        with pytest.raises(SystemExit) as exited:
            cli.entry()
    finally:
        release.set()
        worker.join()
    assert exited.value.code == 3
    assert exits == []


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["run", "--landing", "{landing}", "--home", "{file}"], {}, "as the home: File exists"),
        (["run", "--landing", "{landing}", "--home", "{file}/sub"], {}, "Not a directory"),
        (["run", "--landing", "{file}", "--home", "{home}"], {}, "is not a folder"),
        (["generate", "--out", "{file}/x", "--months", "1"], {}, "Cannot write the sample"),
        (["generate", "--out", "{home}", "--months", "0"], {}, "must be a number above 0"),
        (["generate", "--out", "{home}", "--scale", "-1"], {}, "must be a number above 0"),
        (["docs", "--home", "{home}", "--port", "99999"], {}, "must be a port from 0 to 65535"),
        (["report", "--home", "{home}", "--port", "-1"], {}, "must be a port from 0 to 65535"),
        (
            ["run", "--landing", "{landing}", "--home", "{home}"],
            {"TRUSTWH_QUARANTINE_THRESHOLD": "5"},
            "TRUSTWH_QUARANTINE_THRESHOLD must be a share from 0 to 1",
        ),
        (
            ["report", "--home", "{home}"],
            {"TRUSTWH_THREADS": "abc"},
            "TRUSTWH_THREADS must be a whole number of 1 or more",
        ),
    ],
)
def test_a_mistake_in_the_command_is_a_message_and_exit_2(
    tmp_path, monkeypatch, capsys, args, env, said
):
    (tmp_path / "landing").mkdir()
    (tmp_path / "file").write_text("")
    places = {"landing": tmp_path / "landing", "file": tmp_path / "file", "home": tmp_path / "h"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        code = cli.main([arg.format(**places) for arg in args])
    except SystemExit as exit:  # argparse's own message, on stderr
        code = exit.code
    captured = capsys.readouterr()
    output = " ".join((captured.out + captured.err).split())
    assert code == 2 and said in output, output
    assert "Traceback" not in output


def test_a_port_in_use_is_a_message_and_exit_2(tmp_path, capsys):
    import socket

    from dagster_project.defs.quality import report

    home = tmp_path / "home"
    (home / "quality").mkdir(parents=True)
    (home / "quality" / "index.html").write_text("<html></html>")
    (home / "serving.duckdb").write_text("")
    os.utime(home / "quality" / "index.html")  # the page is newer: it is served, not rebuilt
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = cli.Settings.load(home=home)
        code = report.report_command(settings, True, port, print)
    assert code == 2 and "Address already in use" in capsys.readouterr().out


def test_a_serving_file_that_is_no_database_is_a_message_and_exit_2(tmp_path, capsys):
    from dagster_project.defs.quality import report

    home = tmp_path / "home"
    home.mkdir()
    (home / "serving.duckdb").write_text("not a database")
    code = report.report_command(cli.Settings.load(home=home), False, 0, print)
    out = capsys.readouterr().out
    assert code == 2 and "Cannot read" in out and "not a valid DuckDB database" in out


@pytest.mark.parametrize(
    ("severity", "shown", "blocking"),
    [
        ("WARN", "check warned raw/orders:row_count_near_average", 0),
        ("ERROR", "check failed raw/orders:row_count_near_average", 1),
    ],
)
def test_the_progress_tells_a_warning_check_from_a_failed_one(severity, shown, blocking):
    """A warn-level check that did not pass is reported and blocks nothing: the progress does
    not call it failed, nor count it among the checks that skip later steps."""
    import io
    import logging
    from types import SimpleNamespace

    import dagster as dg
    from rich.console import Console

    from dagster_project.runner import _ProgressHandler

    out = io.StringIO()
    handler = _ProgressHandler(Console(file=out, width=200))
    evaluation = SimpleNamespace(
        passed=False,
        asset_key=dg.AssetKey(["raw", "orders"]),
        check_name="row_count_near_average",
        severity=dg.AssetCheckSeverity(severity),
    )
    event = SimpleNamespace(
        event_type_value="ASSET_CHECK_EVALUATION", event_specific_data=evaluation
    )
    record = logging.LogRecord("dagster", logging.INFO, __file__, 1, "", None, None)
    record.dagster_meta = {"dagster_event": event, "step_key": "ingest_exports"}
    handler.emit(record)
    assert shown in out.getvalue()
    assert len(handler.failed_checks) == blocking
