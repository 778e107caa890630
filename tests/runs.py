"""Running the real `trustwh` command in-process, and reading what it built."""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import duckdb

from dagster_project.cli import main
from dagster_project.settings import DBT_PROJECT_DIR, Settings


def trustwh(*args: str | Path) -> tuple[int, str]:
    """Run `trustwh ARGS`; return its exit code and what it printed."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([str(arg) for arg in args])
    return code, out.getvalue()


def run_process(landing: Path, home: Path, **popen) -> subprocess.Popen:
    """`trustwh run` in a process of its own, to kill, interrupt or read beside while it runs."""
    command = [sys.executable, "-m", "dagster_project.cli", "run"]
    return subprocess.Popen([*command, "--landing", str(landing), "--home", str(home)], **popen)


def interrupt_run(landing: Path, home: Path, at: str, delay: float = 0.0) -> tuple[int, str]:
    """`trustwh run`, sent a Ctrl-C (SIGINT) `delay` seconds after it prints a line starting
    with `at`; its exit code and all it printed (it must end within a minute)."""
    run = run_process(
        landing,
        home,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"COLUMNS": "200"},
    )
    seen = []
    for line in run.stdout:
        seen.append(line)
        if line.startswith(at):
            time.sleep(delay)
            run.send_signal(signal.SIGINT)
            break
    output = "".join(seen) + run.communicate(timeout=60)[0]
    return run.returncode, output


def dbt(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The dbt CLI of this environment over a home's warehouse, in the target folder
    `trustwh run` uses for that home."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(Settings.load(home=home).dbt_target_path),
            "--log-path",
            str(home / "dbt-logs"),
        ],
        env=os.environ | {"TRUSTWH_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )


@contextmanager
def the_checkouts_project_alone() -> Iterator[None]:
    """One test at a time, across pytest-xdist's workers, among those that edit the
    checkout's dbt project and those that need it unchanged while a run parses it (a warm dbt
    reuses its parse only of unchanged files)."""
    target = DBT_PROJECT_DIR / "target"
    target.mkdir(exist_ok=True)
    with open(target / ".tests.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def has_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has the file `path` open."""
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except (FileNotFoundError, PermissionError):
        return False
    for descriptor in descriptors:
        try:
            if os.readlink(f"/proc/{pid}/fd/{descriptor}") == str(path):
                return True
        except OSError:
            continue
    return False


def query(database: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


# The tables of `quality` that dbt builds from the current versions (the others are the
# ledger's and the gate's, which name each home's own loads).
QUALITY_MODELS = ("orphan_refunds", "orphans_summary", "unknown_stores")


def mart_fingerprints(serving: Path) -> dict[str, str]:
    """A content hash of every mart and of the quality tables dbt builds, independent of row
    order."""
    with duckdb.connect(str(serving), read_only=True) as con:
        names = [
            f"marts.{row[0]}"
            for row in con.execute(
                "select table_name from information_schema.tables "
                "where table_schema = 'marts' order by 1"
            ).fetchall()
        ] + [f"quality.{name}" for name in QUALITY_MODELS]
        fingerprints = {}
        for name in names:
            rows = sorted(map(repr, con.execute(f"select * from {name}").fetchall()))
            fingerprints[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
    return fingerprints
