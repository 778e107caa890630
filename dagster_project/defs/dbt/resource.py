"""The resource that runs dbt for the dbt assets and the docs."""

import importlib.metadata
import os
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from dagster_dbt import DbtCliInvocation, DbtCliResource
from packaging import version

from .process import PARENT_PID
from .project import dbt_project


class WarehouseDbt(DbtCliResource):
    """dagster-dbt's resource without two steps it takes before every dbt command, ~4 s a
    run that this project never uses: `dbt --version` in a subprocess (2.4 s), to tell dbt
    Core from dbt Fusion, while the dbt it runs is this environment's dbt-core; and a dbt
    adapter opened in-process (1.5 s), which only `fetch_row_counts()` and
    `fetch_column_metadata()` use (dagster-dbt runs on without one when it cannot open it).

    dbt runs as `trustwh-dbt` (`process.py`), which ends with the process that started it:
    a run killed mid-build leaves no dbt holding the working database."""

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> None:
        return None

    def cli(self, args: Sequence[str], **kwargs) -> DbtCliInvocation:
        # dagster-dbt passes this process's environment to dbt's as it starts it.
        before = os.environ.get(PARENT_PID)
        os.environ[PARENT_PID] = str(os.getpid())
        try:
            return super().cli(args, **kwargs)
        finally:
            if before is None:
                os.environ.pop(PARENT_PID, None)
            else:
                os.environ[PARENT_PID] = before


def dbt_resource() -> DbtCliResource:
    # The dbt of this environment, whether or not its bin folder is on PATH: `trustwh-dbt`,
    # installed with the project (pyproject.toml).
    executable = Path(sys.executable).with_name("trustwh-dbt")
    return WarehouseDbt(
        project_dir=dbt_project,
        profiles_dir=str(dbt_project.profiles_dir),
        dbt_executable=str(executable) if executable.exists() else "dbt",
    )
