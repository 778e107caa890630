"""The Dagster definitions load, and the UI serves one connected graph with every asset."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.dbt.project import ensure_manifest
from dagster_project.defs.ingest.contract import ENTITIES

from .runs import the_checkouts_project_alone

REPURCHASE_MARTS = {
    "store_cohort_retention",
    "platform_cohort_retention",
    "store_monthly_repurchase",
    "platform_monthly_repurchase",
    "live_session_performance",
}
TRUST_MARTS = {
    "store_refunds_monthly",
    "store_violations_monthly",
    "store_compliance",
    "seasonal_gift_list",
    "trust_program_effect",
    "refund_experience_effect",
    "fan_club_repurchase",
    "store_daily_gmv",
    "store_scorecard",
}
EXPECTED_KEYS = (
    {f"raw/{name}" for name in ENTITIES}
    | {"quality/load_ledger", "quality/quarantine", "serving/database"}
    | {f"marts/{name}" for name in REPURCHASE_MARTS | TRUST_MARTS}
    # dbt models are keyed by the table they build (the model quality_orphan_refunds builds
    # quality.orphan_refunds).
    | {"quality/orphan_refunds", "quality/unknown_stores", "quality/orphans_summary"}
)


@pytest.fixture(scope="module")
def defs() -> dg.Definitions:
    ensure_manifest()
    from dagster_project.definitions import defs

    return defs


def test_definitions_hold_every_asset_in_one_connected_graph(defs):
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert not EXPECTED_KEYS - keys
    # Every mart descends from a raw asset, and publishing depends on every mart.
    for mart in REPURCHASE_MARTS | TRUST_MARTS:
        ancestors, frontier = set(), [dg.AssetKey(["marts", mart])]
        while frontier:
            parents = graph.get(frontier.pop()).parent_keys
            frontier.extend(parents - ancestors)
            ancestors |= parents
        assert any(key.path[0] == "raw" for key in ancestors), mart
    serving_parents = {
        key.to_user_string() for key in graph.get(dg.AssetKey(["serving", "database"])).parent_keys
    }
    assert {f"marts/{name}" for name in REPURCHASE_MARTS | TRUST_MARTS} <= serving_parents
    assert defs.resolve_job_def("trustwh") is not None
    assert {sensor.name for sensor in defs.sensors} == {
        "landing_sensor",
        "run_failure_alert",
        "blocked_load_alert",
    }
    assert {schedule.name for schedule in defs.schedules} == {"daily_build"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


def test_webserver_serves_every_asset_and_check(tmp_path: Path, defs):
    port = _free_port()
    env = os.environ | {"DAGSTER_HOME": str(tmp_path), "TRUSTWH_HOME": str(tmp_path / "home")}
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen(
        [str(webserver), "-m", "dagster_project.definitions", "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5)
                break
            except OSError:
                assert process.poll() is None, "dagster-webserver exited"
                assert time.monotonic() < deadline, "dagster-webserver did not start"
                time.sleep(1)
        data = _graphql(
            port,
            "{ assetNodes { assetKey { path } "
            "assetChecksOrError { ... on AssetChecks { checks { name blocking } } } } }",
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
    nodes = data["assetNodes"]
    keys = {"/".join(node["assetKey"]["path"]) for node in nodes}
    assert not EXPECTED_KEYS - keys
    checks = {
        "/".join(node["assetKey"]["path"]): {
            check["name"]: check["blocking"] for check in node["assetChecksOrError"]["checks"]
        }
        for node in nodes
    }
    for name in ENTITIES:
        assert checks[f"raw/{name}"]["rows_accounted"] is True
        assert checks[f"raw/{name}"]["key_unique_in_load"] is True  # the gate's rules
        # Decided per load while loading: it warns of the loads it blocked, never stops a run.
        assert checks[f"raw/{name}"]["quarantine_share"] is False
    assert any(checks[f"marts/{name}"] for name in REPURCHASE_MARTS)  # dbt tests as checks


def test_loading_the_definitions_parses_a_dbt_project_changed_since_its_manifest():
    """The Dagster UI loads `dagster_project.definitions` alone (`make dev`, "Reload
    definitions"): on a fresh clone there is no manifest, and after a model is added the
    manifest lacks it. Loading them parses the project first, one process at a time: dbt
    writes the manifest in place, and another process would read it half-written."""
    from dagster_project.defs.dbt.project import PARSE_LOCK, dbt_project
    from dagster_project.settings import DBT_PROJECT_DIR

    manifest = Path(dbt_project.manifest_path)
    changed = DBT_PROJECT_DIR / "dbt_project.yml"
    with the_checkouts_project_alone(), open(manifest.parent / PARSE_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as a process parsing it holds it
        os.utime(changed)  # as an edit would leave it: newer than the manifest
        assert changed.stat().st_mtime > manifest.stat().st_mtime
        loading = subprocess.Popen(
            [sys.executable, "-c", "import dagster_project.definitions"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_until_blocked_on_a_lock(loading)
        assert manifest.stat().st_mtime < changed.stat().st_mtime  # it has not parsed
    _, stderr = loading.communicate(timeout=300)
    assert loading.returncode == 0, stderr
    assert manifest.stat().st_mtime >= changed.stat().st_mtime


def _wait_until_blocked_on_a_lock(process: subprocess.Popen, seconds: float = 300) -> None:
    """Until Linux lists the process as waiting for a file lock (`/proc/locks`: "->")."""
    deadline = time.monotonic() + seconds
    while not any(
        line.split()[1] == "->" and line.split()[5] == str(process.pid)
        for line in Path("/proc/locks").read_text().splitlines()
    ):
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "it never waited for the lock"
        time.sleep(0.1)


def test_the_definitions_load_from_an_install_whose_project_folder_is_read_only(monkeypatch):
    """Where the manifest was parsed at install and the folder cannot be written, no parse
    can be under way there: loading reads the manifest without taking the lock."""
    from dagster_project.defs.dbt import project

    ensure_manifest()  # current, as an install leaves it

    def read_only(path, *args, **kwargs):
        raise PermissionError(13, "Read-only file system", str(path))

    monkeypatch.setattr(project, "open", read_only, raising=False)
    assert ensure_manifest() == Path(project.dbt_project.manifest_path)

    # A parse that fails there is reported as itself, not as raised while handling the
    # folder's PermissionError.
    def failing_parse():
        raise RuntimeError("dbt parse failed")

    monkeypatch.setattr(project, "manifest_is_stale", lambda: True)
    monkeypatch.setattr(project, "_parse", failing_parse)
    with pytest.raises(RuntimeError, match="dbt parse failed") as raised:
        ensure_manifest()
    assert raised.value.__context__ is None
