"""The run's warm dbt: a `trustwh-dbt` started as the run takes its home, which imports dbt
and parses the project while the run ingests, then builds when the dbt step hands it the
build (`process.py`). The ~3 s a dbt process spends before its first model are spent beside
the ingest instead of after it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ...settings import DBT_PROJECT_DIR, ENV_PII_KEY, Settings, SettingsError
from .process import PARENT_PID, WARM, WARM_FLAG

# dbt's own file log (HOME/dbt-target/dbt.log) keeps warnings and errors only. At its default
# level it wrote each node's SQL and timings (~4,800 JSON lines a run), ~1 s of dbt's Python
# on every build; the run's log (HOME/logs) has every line dbt prints, as the run saw it.
# Builds only: `dbt docs generate`, run when the project changed, keeps its full log in
# HOME/docs, which shows whether it reused the build's parse.
BUILD_FILE_LOG = {"DBT_LOG_LEVEL_FILE": "warn"}


def build_environment(settings: Settings) -> dict[str, str]:
    """What `dbt build` runs with beside the run's own environment: this home's working
    database and limits, and the key of the pseudonyms (int_orders_current), for the build's
    dbt process only."""
    return settings.dbt_env() | {ENV_PII_KEY: settings.pii_key(), **BUILD_FILE_LOG}


def _dagster_dbt_environment(settings: Settings) -> dict[str, str]:
    """What dagster-dbt sets for its dbt process (`DbtCliResource.cli`): the warm dbt parses
    as the build would, and writes its output unbuffered, as dagster-dbt reads it."""
    target = str(settings.dbt_target_path)
    return {
        "DBT_TARGET_PATH": target,
        "DBT_LOG_PATH": target,
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_PROJECT_DIR": str(DBT_PROJECT_DIR),
        "DBT_LOG_FORMAT": "json",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DAGSTER_DBT_CLI": "true",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class WarmDbt:
    process: subprocess.Popen
    name: str

    def environment(self) -> dict[str, str]:
        """For the build's `trustwh-dbt`: where to hand the build over."""
        return {WARM: self.name}

    def stop(self) -> None:
        """Ended with its run: idle when the run had nothing to build, done when it built."""
        self.process.kill()
        self.process.wait()


def warm_environment(settings: Settings) -> dict[str, str]:
    """The environment the build's dbt will run with: the run's own, `build_environment`, and
    what dagster-dbt sets. The warm dbt parses with it."""
    return {**os.environ, **build_environment(settings), **_dagster_dbt_environment(settings)}


def start_warm_dbt(settings: Settings) -> WarmDbt | None:
    """Start the warm dbt for a run of this home; None where there is none to start (no key
    of the pseudonyms: the build says why)."""
    try:
        environment = warm_environment(settings)
    except SettingsError:
        return None
    return launch_warm_dbt(environment, DBT_PROJECT_DIR)


def launch_warm_dbt(environment: dict[str, str], project_dir: Path) -> WarmDbt | None:
    """A warm dbt of the project in `project_dir`, parsing with `environment`; None where
    there is none to start (not Linux, no `trustwh-dbt`)."""
    executable = Path(sys.executable).with_name("trustwh-dbt")
    if sys.platform != "linux" or not executable.exists():
        return None
    name = f"trustwh-dbt-{os.getpid()}-{secrets.token_hex(8)}"
    try:
        process = subprocess.Popen(
            [str(executable), WARM_FLAG],
            env=environment | {PARENT_PID: str(os.getpid()), WARM: name},
            cwd=project_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # A Ctrl-C reaches it through the build's `trustwh-dbt` only, as dbt's own would.
            start_new_session=True,
        )
    except OSError:  # the build starts its own dbt, which says what is wrong
        return None
    return WarmDbt(process, name)
