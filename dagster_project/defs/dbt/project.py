"""The dbt project as Dagster sees it, and keeping its manifest current."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from dagster_dbt import DbtProject

from ...settings import DBT_PROJECT_DIR, project_files

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

PARSE_LOCK = ".parse.lock"


def manifest_is_stale() -> bool:
    manifest = Path(dbt_project.manifest_path)
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    return any(file.stat().st_mtime > built for file in project_files())


def ensure_manifest() -> Path:
    """Parse the dbt project when the manifest is missing or older than any model/macro/seed,
    so definitions always load the project as it is on disk. One process parses at a time
    (dbt writes the manifest in place): a second one started meanwhile waits for it, then
    finds the manifest current."""
    with _parsing_alone(Path(dbt_project.manifest_path).parent):
        if manifest_is_stale():
            _parse()
    return Path(dbt_project.manifest_path)


@contextmanager
def _parsing_alone(target: Path) -> Iterator[None]:
    """Hold the parse lock of the project's target folder; none where the folder cannot be
    written (a read-only install), as no process can be writing the manifest there. The body
    runs outside the `except`: an error in the parse is not reported as raised while
    handling the folder's OSError."""
    with ExitStack() as stack:
        try:
            target.mkdir(parents=True, exist_ok=True)
            lock = stack.enter_context(open(target / PARSE_LOCK, "a"))
        except OSError:
            pass
        else:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
        yield


def _parse() -> None:
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(
        [
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--quiet",
        ]
    )
    if not result.success:
        raise RuntimeError(f"dbt could not parse the project: {result.exception}")
