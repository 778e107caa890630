"""The run's warm dbt (dagster_project/defs/dbt/warm.py, process.py): a dbt process that has
imported dbt and parsed the project before the build is handed to it. The command it takes
must behave as dbt started for it would: its output, its exit code, and a parse of the
project as it is, with the build's settings."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.dbt import process
from dagster_project.defs.dbt.process import WARM, WARM_FLAG
from dagster_project.defs.dbt.warm import WarmDbt, launch_warm_dbt, warm_environment
from dagster_project.settings import DBT_PROJECT_DIR, SEEDS_DIR, Settings, project_files

from .exports import order, write_export
from .runs import has_open, the_checkouts_project_alone, trustwh

TRUSTWH_DBT = str(Path(sys.executable).with_name("trustwh-dbt"))
# What dbt prints when it parsed the project in this command (`dbt parse` writes its timings).
PARSED = "ParsePerfInfoPath"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the dbt project (and its seeds) that a test may change."""
    copy = tmp_path / "project" / DBT_PROJECT_DIR.name
    shutil.copytree(DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    shutil.copytree(SEEDS_DIR, copy.parent / SEEDS_DIR.name)
    return copy


@pytest.fixture
def environment(tmp_path: Path, project: Path) -> dict[str, str]:
    """What the build's dbt runs with (`warm.py`), in the copy of the project."""
    settings = Settings.load(home=tmp_path / "home", landing=tmp_path / "landing")
    copy = {"DBT_PROJECT_DIR": str(project), "DBT_PROFILES_DIR": str(project)}
    return warm_environment(settings) | copy


@pytest.fixture
def warm(environment: dict[str, str], project: Path):
    """A warm dbt of the copy of the project, listening."""
    started = launch_warm_dbt(environment, project)
    assert started is not None
    deadline = time.monotonic() + 30
    while f"@{started.name}\n" not in Path("/proc/net/unix").read_text():  # not yet listening
        assert time.monotonic() < deadline and started.process.poll() is None
        time.sleep(0.02)
    yield started
    started.stop()


def _trustwh_dbt(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """`trustwh-dbt ARGS` as dagster-dbt starts it: in the project, with that environment."""
    return subprocess.run(
        [TRUSTWH_DBT, *args],
        env=environment,
        cwd=environment["DBT_PROJECT_DIR"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _events(output: str) -> list[str]:
    return [json.loads(line)["info"]["name"] for line in output.splitlines() if line]


def _took_it(warm: WarmDbt) -> bool:
    """Whether the warm dbt ran a command: it ends with the one it runs."""
    return warm.process.poll() is not None


def test_a_command_handed_over_runs_in_the_warm_dbt_with_the_parse_it_made(environment, warm):
    done = _trustwh_dbt(environment | warm.environment(), "parse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _took_it(warm) and warm.process.returncode == 0
    events = _events(done.stdout)  # dbt's output, as its own process prints it
    assert events[:2] == ["MainReportVersion", "AdapterRegistered"], events
    assert PARSED not in events, events  # parsed before the command came
    assert (Path(environment["DBT_TARGET_PATH"]) / "manifest.json").is_file()


def test_with_other_settings_the_warm_dbt_parses_again(environment, warm):
    """The key of the pseudonyms is one of what a parse reads (`env_var()` in a model)."""
    other = environment | {"TRUSTWH_PII_KEY": "another-key-0123456789"}
    done = _trustwh_dbt(other | warm.environment(), "parse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _took_it(warm)
    assert PARSED in _events(done.stdout)


def test_a_project_changed_since_its_parse_is_parsed_again(environment, project, warm):
    model = next(path for path in project_files(project) if path.suffix == ".sql")
    before = model.stat()
    manifest = Path(environment["DBT_TARGET_PATH"]) / "manifest.json"
    deadline = time.monotonic() + 120
    while not manifest.exists():  # the warm dbt's parse is written: it has read the project
        assert time.monotonic() < deadline and warm.process.poll() is None
        time.sleep(0.1)
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
    done = _trustwh_dbt(environment | warm.environment(), "parse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _took_it(warm)
    assert PARSED in _events(done.stdout)


def test_the_exit_code_and_errors_of_the_command_are_its_callers(environment, warm):
    done = _trustwh_dbt(environment | warm.environment(), "no-such-command")
    assert done.returncode == 2
    assert "No such command 'no-such-command'" in done.stderr
    assert _took_it(warm)


# A dbt command that holds the working database until it is stopped.
WAIT = """{% macro wait() %}
{% do run_query("select count(*) from range(1000000000000000)") %}
{% endmacro %}
"""


def _waiting(environment: dict[str, str], project: Path, warm: WarmDbt) -> subprocess.Popen:
    """`trustwh-dbt run-operation wait`, handed to the warm dbt, once that one holds the
    working database."""
    (project / "macros" / "wait.sql").write_text(WAIT)
    caller = subprocess.Popen(
        [TRUSTWH_DBT, "run-operation", "wait"],
        env=environment | warm.environment(),
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    warehouse = Path(environment["TRUSTWH_WAREHOUSE"])
    deadline = time.monotonic() + 120
    while not has_open(warm.process.pid, warehouse):
        assert caller.poll() is None and time.monotonic() < deadline, "it never opened it"
        time.sleep(0.05)
    return caller


def test_a_warm_dbt_whose_caller_is_killed_ends_and_frees_the_database(environment, project, warm):
    """dagster-dbt's `trustwh-dbt` dies with the step that started it (a killed run): the
    dbt it handed its command to must not build on, holding the working database."""
    caller = _waiting(environment, project, warm)
    caller.kill()
    caller.wait()
    assert warm.process.wait(timeout=10) != 0
    duckdb.connect(environment["TRUSTWH_WAREHOUSE"]).close()  # free to open


def test_a_ctrl_c_to_the_caller_stops_the_command_in_the_warm_dbt(environment, project, warm):
    """dagster-dbt stops dbt with SIGINT: the caller passes it on, and exits with dbt's code
    once the warm dbt has stopped the command and ended."""
    caller = _waiting(environment, project, warm)
    caller.send_signal(signal.SIGINT)
    assert caller.wait(timeout=30) > 0  # dbt's exit code: not ended by the signal itself
    assert warm.process.poll() is not None  # it ended before its caller did
    duckdb.connect(environment["TRUSTWH_WAREHOUSE"]).close()


def test_without_a_warm_dbt_the_command_runs_in_its_own_process(environment):
    done = _trustwh_dbt(environment | {WARM: "no-warm-dbt-of-that-name"}, "parse")
    assert done.returncode == 0, done.stdout + done.stderr
    assert PARSED in _events(done.stdout)


def test_a_run_hands_its_build_to_its_warm_dbt(tmp_path):
    """The manifest a build writes keeps the id of the dbt command that parsed the project:
    the warm dbt's, not the build's own."""
    landing, home = tmp_path / "landing", tmp_path / "home"
    write_export(landing, "orders", "orders_20211201.csv", [order("1000000001")])
    with the_checkouts_project_alone():  # a file changed during the run is parsed again
        code, output = trustwh("run", "--landing", landing, "--home", home)
    assert code == 0, output
    target = Settings.load(home=home).dbt_target_path
    built = json.loads((target / "run_results.json").read_text())["metadata"]
    parsed = json.loads((target / "manifest.json").read_text())["metadata"]
    assert parsed["invocation_id"] != built["invocation_id"]

    # With nothing new, no build is handed over: its warm dbt ends with the run all the same.
    code, output = trustwh("run", "--landing", landing, "--home", home, "--force")
    assert code == 0 and "publish serving.duckdb: skipped" in " ".join(output.split()), output
    assert not _warm_children()


def _warm_children() -> list[int]:
    """This process's children that are warm dbts, still running."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            continue
        if stat[1] == str(os.getpid()) and WARM_FLAG.encode() in command:
            found.append(int(entry.name))
    return found


def test_without_pidfd_the_caller_waits_for_the_warm_dbt_to_end(monkeypatch):
    """On a kernel without `pidfd_open` (Linux before 5.3) the build's `trustwh-dbt` looks
    for the warm dbt in /proc until it has ended: it returns once the process has exited,
    not before, and an ended process not yet reaped (a zombie) counts as ended."""

    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    ending = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    waiting = threading.Thread(target=process._wait_for_exit, args=(ending.pid,), daemon=True)
    waiting.start()
    waiting.join(timeout=0.2)
    assert waiting.is_alive() and ending.poll() is None  # still running: still waiting
    waiting.join(timeout=30)
    assert not waiting.is_alive()  # the zombie it left counts as ended
    assert ending.poll() == 0  # and it had ended when the wait returned
