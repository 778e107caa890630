"""The `trustwh` command's exit: the code of `main`, with or without Python's teardown."""

from __future__ import annotations

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
