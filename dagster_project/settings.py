"""Paths and knobs of the warehouse, in one place: explicit values, then env vars, then defaults.

Read at run time (never at import), so the same code serves the CLI, `dagster dev` and tests.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
SEEDS_DIR = PROJECT_ROOT / "seeds"
# The Dagster instance configuration a new home gets (runner.open_instance, `make dev`).
DAGSTER_YAML = Path(__file__).with_name("dagster.yaml")

ENV_HOME = "TRUSTWH_HOME"
ENV_LANDING = "TRUSTWH_LANDING"
ENV_QUARANTINE_THRESHOLD = "TRUSTWH_QUARANTINE_THRESHOLD"
ENV_MEMORY_LIMIT = "TRUSTWH_MEMORY_LIMIT"
ENV_THREADS = "TRUSTWH_THREADS"
ENV_ALERT_WEBHOOK = "TRUSTWH_ALERT_WEBHOOK"  # alerts are also POSTed here as JSON
ENV_MODE = "TRUSTWH_ENV"  # `production`: secrets must come from the environment
ENV_PII_KEY = "TRUSTWH_PII_KEY"  # keys the pseudonyms of receiver phones and addresses
PII_KEY_LENGTH = (16, 64)  # characters; at most one HMAC-SHA256 block


# What dbt parses in its project folder; its seeds are beside it (`seed-paths: ["../seeds"]`).
_DBT_SOURCES = ("models", "macros", "tests", "snapshots", "dbt_project.yml", "profiles.yml")


def project_files(project_dir: Path = DBT_PROJECT_DIR) -> list[Path]:
    """The files of the dbt project that a parse reads, sorted."""
    paths = [project_dir / name for name in _DBT_SOURCES] + [project_dir.parent / SEEDS_DIR.name]
    found = (file for path in paths for file in (path.rglob("*") if path.is_dir() else [path]))
    return sorted(file for file in found if file.is_file())


class SettingsError(Exception):
    """A setting a person must fix; the message says which and how."""


@dataclass(frozen=True)
class Settings:
    home: Path
    landing: Path
    # A load with a larger share of its data rows quarantined is blocked (EXPORTS.md: 5%).
    quarantine_threshold: float = 0.05
    # Per DuckDB database opened (ingest, then dbt in its own process while the run's process
    # lives on): 2GB keeps a 10M-order build under 4 GiB peak RSS; beyond it DuckDB spills to
    # temp_dir (bench/results).
    memory_limit: str = "2GB"
    threads: int = 2
    alert_webhook: str | None = None
    production: bool = False
    pii_key_value: str | None = field(default=None, repr=False)

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

    @property
    def docs_path(self) -> Path:
        """The dbt docs site of this home (`trustwh docs` serves it)."""
        return self.home / "docs"

    @property
    def dbt_target_path(self) -> Path:
        """dbt's target folder for this home's builds. One folder, kept between runs: dbt's
        partial parse file in it is only valid for this home's profile (the warehouse path),
        and a run that finds it skips a full parse of the project."""
        return self.home.absolute() / "dbt-target"

    @property
    def build_basis_path(self) -> Path:
        """The basis of the last successful dbt build (see `build_basis`)."""
        return self.home / "dbt-build-basis"

    @property
    def built_state_path(self) -> Path:
        """The loads and project the marts were last built from (`build_state`), written by
        the dbt step: publish publishes only marts built from the loads it publishes."""
        return self.home / "dbt-built-state"

    @property
    def pii_key_path(self) -> Path:
        """The generated local key, outside production only."""
        return self.home / "pii.key"

    def pii_key(self) -> str:
        """The secret of the keyed hash (HMAC-SHA256) that pseudonymises personal data.

        From TRUSTWH_PII_KEY; in production mode it must be set. Otherwise a key is generated
        once into HOME/pii.key (mode 0600) and reused, so pseudonyms are stable per home."""
        low, high = PII_KEY_LENGTH
        if self.pii_key_value:
            key = self.pii_key_value
            if not (low <= len(key) <= high and key.isascii() and key.isprintable()):
                raise SettingsError(
                    f"{ENV_PII_KEY} must be {low} to {high} printable ASCII characters: use a "
                    "random secret, e.g. the output of `openssl rand -hex 32`."
                )
            return key
        if self.production:
            raise SettingsError(
                f"{ENV_MODE}=production but {ENV_PII_KEY} is not set. Set it from your secret "
                "store to a random secret (e.g. `openssl rand -hex 32`): it keys the "
                "pseudonyms of receiver phones and addresses. Never commit it."
            )
        path = self.pii_key_path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_text(encoding="ascii").strip()
            if not low <= len(key) <= high:
                raise SettingsError(
                    f"{path} does not hold a key: delete it to generate a new one "
                    "(pseudonyms in the working database will change)."
                ) from None
            return key
        key = secrets.token_hex(32)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        return key

    @classmethod
    def load(cls, **overrides: object) -> Settings:
        """Settings from the environment, with explicit non-None overrides on top."""
        env = os.environ
        settings = cls(
            home=Path(env.get(ENV_HOME, ".trustwh")),
            landing=Path(env.get(ENV_LANDING, "landing")),
            quarantine_threshold=_fraction(ENV_QUARANTINE_THRESHOLD, "0.05"),
            memory_limit=env.get(ENV_MEMORY_LIMIT, "2GB"),
            threads=_count(ENV_THREADS, "2"),
            alert_webhook=env.get(ENV_ALERT_WEBHOOK) or None,
            production=env.get(ENV_MODE, "").strip().lower() == "production",
            pii_key_value=env.get(ENV_PII_KEY) or None,
        )
        given = {key: value for key, value in overrides.items() if value is not None}
        settings = replace(settings, **given)
        return replace(
            settings,
            home=Path(settings.home).expanduser().resolve(),
            landing=Path(settings.landing).expanduser().resolve(),
        )

    def dbt_env(self) -> dict[str, str]:
        """What dbt's profile reads (`dbt_project/profiles.yml`): this home's working database
        and limits, whatever the process's own environment says (a run launched in the
        Dagster UI can name another home in the warehouse resource's config)."""
        return {
            "TRUSTWH_WAREHOUSE": str(self.warehouse_path),
            "TRUSTWH_TEMP_DIR": str(self.temp_dir),
            ENV_MEMORY_LIMIT: self.memory_limit,
            ENV_THREADS: str(self.threads),
        }

    def export_env(self) -> None:
        """Make these settings what every child process (dbt) and later `load()` sees."""
        os.environ[ENV_HOME] = str(self.home)
        os.environ[ENV_LANDING] = str(self.landing)
        os.environ[ENV_QUARANTINE_THRESHOLD] = str(self.quarantine_threshold)
        os.environ[ENV_MEMORY_LIMIT] = self.memory_limit
        os.environ[ENV_THREADS] = str(self.threads)


def _fraction(name: str, default: str) -> float:
    """A share from 0 to 1 in the environment variable `name` (0.05 for 5%)."""
    text = os.environ.get(name, default)
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise SettingsError(f"{name} must be a share from 0 to 1 (0.05 for 5%), not {text!r}")
    return value


def _count(name: str, default: str) -> int:
    """A whole number of 1 or more in the environment variable `name`."""
    text = os.environ.get(name, default)
    if not text.strip().isdigit() or int(text) < 1:
        raise SettingsError(f"{name} must be a whole number of 1 or more, not {text!r}")
    return int(text)
