"""Paths and knobs of the warehouse, in one place: explicit values, then env vars, then defaults.

Read at run time (never at import), so the same code serves the CLI, `dagster dev` and tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SEEDS_DIR = PROJECT_ROOT / "seeds"

ENV_HOME = "TRUSTWH_HOME"
ENV_LANDING = "TRUSTWH_LANDING"
ENV_QUARANTINE_THRESHOLD = "TRUSTWH_QUARANTINE_THRESHOLD"
ENV_MEMORY_LIMIT = "TRUSTWH_MEMORY_LIMIT"
ENV_THREADS = "TRUSTWH_THREADS"


@dataclass(frozen=True)
class Settings:
    home: Path
    landing: Path
    # A load with a larger share of its data rows quarantined is blocked (EXPORTS.md: 5%).
    quarantine_threshold: float = 0.05
    memory_limit: str = "4GB"
    threads: int = 2

    @property
    def warehouse_path(self) -> Path:
        """The working database: raw, staging, marts as dbt builds them. Not for BI."""
        return self.home / "warehouse.duckdb"

    @property
    def serving_path(self) -> Path:
        """The published database BI tools open read-only."""
        return self.home / "serving.duckdb"

    @property
    def temp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings from the environment, with explicit non-None overrides on top."""
        env = os.environ
        settings = cls(
            home=Path(env.get(ENV_HOME, ".trustwh")),
            landing=Path(env.get(ENV_LANDING, "landing")),
            quarantine_threshold=float(env.get(ENV_QUARANTINE_THRESHOLD, "0.05")),
            memory_limit=env.get(ENV_MEMORY_LIMIT, "4GB"),
            threads=int(env.get(ENV_THREADS, "2")),
        )
        given = {key: value for key, value in overrides.items() if value is not None}
        settings = replace(settings, **given)
        return replace(
            settings,
            home=Path(settings.home).expanduser().resolve(),
            landing=Path(settings.landing).expanduser().resolve(),
        )

    def export_env(self) -> None:
        """Make these settings what every child process (dbt) and later `load()` sees."""
        os.environ[ENV_HOME] = str(self.home)
        os.environ[ENV_LANDING] = str(self.landing)
        os.environ[ENV_QUARANTINE_THRESHOLD] = str(self.quarantine_threshold)
        os.environ[ENV_MEMORY_LIMIT] = self.memory_limit
        os.environ[ENV_THREADS] = str(self.threads)
