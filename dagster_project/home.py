"""Who may read what under the warehouse home.

What readers open is published readable by every account on the host: `serving.duckdb` (BI
tools), `docs/` (analysts) and `quality/` (the governance report and GX's pages). Everything
else is private to the account that runs the pipeline: the working database, its WAL and spill
files hold receiver phones and addresses as exported; dbt's target folder holds the
pseudonyms' key (in the compiled SQL, the manifest, the saved parse and dbt's log); the logs and
Dagster's storage may quote rows in an error.

To limit who reads what is published, restrict the home folder itself: its mode is left alone
once it exists.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

PUBLISHED = frozenset({"serving.duckdb", "docs", "quality"})
# Files and folders created with it are the owner's only.
PRIVATE_UMASK = 0o077
SHARED_FILE, SHARED_FOLDER = 0o644, 0o755


def open_home(home: Path) -> None:
    """Make `home` ready for the pipeline's process. A new home is created readable (readers
    must reach what is published); from now on, files this process and the processes it starts
    (dbt) create are private; and any private entry left open (by an earlier version, or by a
    process started without this, such as the Dagster UI's) is closed."""
    if not home.is_dir():
        home.mkdir(parents=True, exist_ok=True)
        home.chmod(SHARED_FOLDER)
    os.umask(PRIVATE_UMASK)
    for entry in home.iterdir():
        if entry.name in PUBLISHED:
            continue
        for path in _tree(entry):
            # A file another process (Dagster's daemon) removes meanwhile needs nothing.
            with contextlib.suppress(FileNotFoundError):
                mode = path.lstat().st_mode
                if not stat.S_ISLNK(mode) and mode & 0o077:
                    path.chmod(stat.S_IMODE(mode) & ~0o077)


def make_readable(path: Path) -> None:
    """Make a published file, or a folder and everything in it, readable by every account
    (files 0644, folders 0755). Call it before a file is renamed into place."""
    for each in _tree(path):
        mode = each.lstat().st_mode
        wanted = SHARED_FOLDER if stat.S_ISDIR(mode) else SHARED_FILE
        if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and stat.S_IMODE(mode) != wanted:
            each.chmod(wanted)


def _tree(path: Path) -> Iterator[Path]:
    """`path` and, for a folder, everything under it; symbolic links are not followed."""
    yield path
    if path.is_dir() and not path.is_symlink():
        for root, folders, files in os.walk(path):
            for name in folders + files:
                yield Path(root, name)
