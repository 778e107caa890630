"""BI readers during a build: while `trustwh run` rebuilds and publishes, other processes query
`serving.duckdb` read-only in a loop through the clients BI tools use (DuckDB's Python API,
SQLAlchemy with duckdb-engine as Superset opens it) and never see an error or a mix of two
publishes; a connection held across the swap keeps its old, consistent view.

Run as a script, this file is one such reader (see `_read_until_stopped`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
READERS = {
    # One fresh connection per iteration, as a notebook or a script does.
    "duckdb": "duckdb.connect(path, read_only=True)",
    # Superset's way: duckdb-engine, read-only in the URL, a connection per query (NullPool).
    "sqlalchemy_url": "duckdb:///PATH?access_mode=read_only with NullPool",
    # Other SQLAlchemy tools: read-only as a connect argument, a pool recycling connections.
    "sqlalchemy_pool": "duckdb:///PATH, connect_args read_only, QueuePool with pool_recycle",
    # A BI session that stays connected across the swap.
    "held": "one duckdb connection for the whole test",
}


# ---- the reader (runs in its own process) --------------------------------------------------


def _published_state(query) -> tuple[str, list[str]]:
    """The publish this connection sees, and every way it disagrees with itself."""
    problems = []
    [(publish_id, published_at)] = query("select publish_id, published_at from quality.freshness")
    [(mart_rows, logged_at, latest)] = query(
        "select mart_rows, published_at, published_at = (select max(published_at) "
        f"from quality.publish_log) from quality.publish_log where publish_id = '{publish_id}'"
    )
    if logged_at != published_at or not latest:
        problems.append(f"{publish_id} is not the latest publish in the log")
    # DuckDB's API gives JSON as text, duckdb-engine as parsed.
    recorded = mart_rows if isinstance(mart_rows, dict) else json.loads(mart_rows)
    marts = {
        name
        for (name,) in query(
            "select table_name from information_schema.tables where table_schema = 'marts'"
        )
    }
    if marts != set(recorded):
        problems.append(f"marts {sorted(marts ^ set(recorded))} differ from the log")
    # Several statements on purpose: the connection, not one statement, must be consistent.
    for name in sorted(marts & set(recorded)):
        [(count,)] = query(f"select count(*) from marts.{name}")
        if count != recorded[name]:
            problems.append(
                f"{publish_id}: marts.{name} has {count} rows, the log {recorded[name]}"
            )
    query(
        "select month, returning_buyer_rate from marts.platform_monthly_repurchase order by month"
    )
    return publish_id, problems


def _read_until_stopped(kind: str, serving: str, stop: str, status: str) -> int:
    """Query in a loop until the stop file appears, then once more; write what was seen."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = None
    held = None
    if kind == "sqlalchemy_url":
        engine = sqlalchemy.create_engine(
            f"duckdb:///{serving}?access_mode=read_only", poolclass=NullPool
        )
    elif kind == "sqlalchemy_pool":
        engine = sqlalchemy.create_engine(
            f"duckdb:///{serving}", connect_args={"read_only": True}, pool_recycle=1
        )
    elif kind == "held":
        held = duckdb.connect(serving, read_only=True)

    def iteration() -> tuple[str, list[str]]:
        if engine is not None:
            with engine.connect() as con:
                return _published_state(lambda sql: con.execute(sqlalchemy.text(sql)).fetchall())
        if held is not None:
            return _published_state(lambda sql: held.execute(sql).fetchall())
        with duckdb.connect(serving, read_only=True) as con:
            return _published_state(lambda sql: con.execute(sql).fetchall())

    seen = {"kind": kind, "iterations": 0, "errors": [], "problems": [], "publishes": []}
    deadline = time.monotonic() + 1200  # never outlive a hung test
    stopping = False
    while True:
        stopping = stopping or Path(stop).exists() or time.monotonic() > deadline
        try:
            publish_id, problems = iteration()
            if not seen["publishes"] or seen["publishes"][-1] != publish_id:
                seen["publishes"].append(publish_id)
            seen["problems"] += problems
        except Exception as error:  # every error counts, whatever its kind
            seen["errors"].append(f"{type(error).__name__}: {error}")
        seen["iterations"] += 1
        seen["after_stop"] = stopping
        Path(f"{status}.tmp").write_text(json.dumps(seen))
        os.replace(f"{status}.tmp", status)  # the test never reads half a status
        if stopping:
            break
        time.sleep(0.1)
    if held is not None:
        held.close()
    return 0


# ---- the test ------------------------------------------------------------------------------


def _land(files: list[Path], source: Path, landing: Path) -> None:
    for path in files:
        target = landing / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _status(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or mid-write
        return {}


def test_readers_see_one_consistent_publish_while_a_build_publishes(tmp_path):
    from dagster_project.sample_data.generate import generate

    generate(tmp_path / "exports", scale=0.05, months=6)
    files = sorted(path for path in (tmp_path / "exports").glob("*/*.csv"))
    export_date = {path: re.search(r"_(\d{8})", path.name).group(1) for path in files}
    cutoff = sorted(set(export_date.values()))[len(set(export_date.values())) // 2]
    landing, home = tmp_path / "landing", tmp_path / "home"
    serving = home / "serving.duckdb"
    # Imported here: this file is also the readers' script, run outside the tests package.
    from .runs import run_process

    captured = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "text": True}

    # A first publish for the readers to open.
    _land([path for path in files if export_date[path] < cutoff], tmp_path / "exports", landing)
    first = run_process(landing, home, **captured)
    output, _ = first.communicate(timeout=900)
    assert first.returncode == 0, output
    with duckdb.connect(str(serving), read_only=True) as con:
        [(first_publish,)] = con.execute("select publish_id from quality.freshness").fetchall()

    # Readers start and read the first publish ...
    stop = tmp_path / "stop"
    statuses = {kind: tmp_path / f"{kind}.json" for kind in READERS}
    readers = {
        kind: subprocess.Popen(
            [sys.executable, __file__, kind, str(serving), str(stop), str(statuses[kind])],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for kind in READERS
    }
    try:
        started = time.monotonic()
        while not all(_status(path).get("iterations") for path in statuses.values()):
            assert time.monotonic() - started < 120, {k: p.poll() for k, p in readers.items()}
            time.sleep(0.2)

        # ... while the second half of the exports lands and a second run rebuilds and publishes.
        later = [path for path in files if export_date[path] >= cutoff]
        _land(later, tmp_path / "exports", landing)
        before = {kind: _status(path)["iterations"] for kind, path in statuses.items()}
        second = run_process(landing, home, **captured)
        output, _ = second.communicate(timeout=900)
        assert second.returncode == 0, output
        assert "marts published" in output, output
        during = {
            kind: _status(path)["iterations"] - before[kind] for kind, path in statuses.items()
        }
        # A reconnecting reader sees the new publish at its next connection; the pooled one
        # once its connection is older than `pool_recycle` (1 s). `trustwh` may exit within
        # that second after publishing: the readers are given time to reconnect.
        with duckdb.connect(str(serving), read_only=True) as con:
            [(published,)] = con.execute("select publish_id from quality.freshness").fetchall()
        reconnecting = [statuses[kind] for kind in READERS if kind != "held"]
        waited = time.monotonic()
        while time.monotonic() - waited < 30 and not all(
            published in _status(path).get("publishes", []) for path in reconnecting
        ):
            time.sleep(0.2)
    finally:
        stop.touch()
        for process in readers.values():
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
    seen = {kind: _status(path) for kind, path in statuses.items()}
    with duckdb.connect(str(serving), read_only=True) as con:
        [(second_publish,)] = con.execute("select publish_id from quality.freshness").fetchall()

    print(
        {kind: (status.get("iterations"), status.get("publishes")) for kind, status in seen.items()}
    )
    assert second_publish != first_publish
    for kind, status in seen.items():
        assert status.get("after_stop"), (kind, readers[kind].stdout.read())
        assert status["errors"] == [], (kind, status["errors"][:5])
        assert status["problems"] == [], (kind, status["problems"][:5])
        assert during[kind] >= 20, (kind, during[kind])  # they read all through the run
    # Every reconnecting client moved from the first publish to the second, never back, and
    # never saw anything else; the held connection kept the first publish to the end.
    for kind in ("duckdb", "sqlalchemy_url", "sqlalchemy_pool"):
        assert seen[kind]["publishes"] == [first_publish, second_publish], kind
    assert seen["held"]["publishes"] == [first_publish]


if __name__ == "__main__":
    sys.exit(_read_until_stopped(*sys.argv[1:]))
