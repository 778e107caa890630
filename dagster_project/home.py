"""Who may read what under the warehouse home.

What readers open is published readable by every account on the host: `serving.duckdb` (BI
tools), `docs/` (analysts) and `quality/` (the governance report and GX's pages). Everything
else is private to the account that runs the pipeline: the working database, its WAL and spill
files hold receiver phones and addresses as exported; dbt's target folder holds the
pseudonyms' key (in the compiled SQL, the manifest, the saved parse and dbt's log); the logs and
Dagster's storage may quote rows in an error.

To limit who reads what is published, restrict the home folder itself: its mode is left alone
once it exists.

One run at a time builds a home: a run holds `run.lock` from start to end, from the CLI or the
Dagster UI alike, and a second one does not start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

log = logging.getLogger(__name__)

PUBLISHED = frozenset({"serving.duckdb", "docs", "quality"})
RUN_LOCK = "run.lock"
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
                    _chmod(path, stat.S_IMODE(mode) & ~0o077)


def make_readable(path: Path) -> None:
    """Make a published file, or a folder and everything in it, readable by every account
    (files 0644, folders 0755). Call it before a file is renamed into place."""
    for each in _tree(path):
        mode = each.lstat().st_mode
        wanted = SHARED_FOLDER if stat.S_ISDIR(mode) else SHARED_FILE
        if (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) and stat.S_IMODE(mode) != wanted:
            _chmod(each, wanted)


def _chmod(path: Path, mode: int) -> None:
    """Set a mode, or say why not: a file of another account (a home once run by two)
    cannot be changed, and that must not stop a run."""
    try:
        path.chmod(mode)
    except PermissionError as error:
        log.warning("could not set %s to mode %o: %s", path, mode, error.strerror)


def _tree(path: Path) -> Iterator[Path]:
    """`path` and, for a folder, everything under it; symbolic links are not followed."""
    yield path
    if path.is_dir() and not path.is_symlink():
        for root, folders, files in os.walk(path):
            for name in folders + files:
                yield Path(root, name)


class HomeBusy(Exception):
    """Another run is building the home."""

    def __init__(self, home: Path, holder: str) -> None:
        self.home, self.holder = home, holder
        super().__init__(
            f"another run is building {home} ({holder}); this one did not start. Run again "
            "when it has finished."
        )


def lock_home(home: Path, wait: float = 2.0) -> int:
    """Take the home's run lock for this run; return its descriptor, for `unlock_home`. The
    lock is the kernel's (flock): it goes with the process, however that ends. Tried for
    `wait` seconds (`home_busy` may hold it shared for an instant to ask)."""
    path = home / RUN_LOCK
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() < deadline:
                time.sleep(0.1)
                continue
            busy = _busy(home, descriptor)
            os.close(descriptor)
            raise busy from None
    os.ftruncate(descriptor, 0)
    os.write(
        descriptor, f"process {os.getpid()}, since {datetime.now():%Y-%m-%d %H:%M:%S}".encode()
    )
    return descriptor


def unlock_home(descriptor: int) -> None:
    os.close(descriptor)  # closing the descriptor releases the lock


def home_busy(home: Path) -> str | None:
    """Why a run cannot start now (another holds the run lock), or None. Only asks: it holds
    the lock shared for an instant (`run_lock_shared`) and writes nothing."""
    with run_lock_shared(home) as busy:
        return busy


@contextlib.contextmanager
def run_lock_shared(home: Path) -> Iterator[str | None]:
    """Hold the home's run lock shared for the block, to read the working database while no
    run builds it: yields None, and a run starting meanwhile waits (`lock_home`'s `wait`)
    rather than finding the file open. When a run holds the lock, yields why the home is
    busy, holding nothing. Shared holds do not conflict with each other (sensors' ticks, the
    CLI asking)."""
    try:
        descriptor = os.open(home / RUN_LOCK, os.O_RDONLY)
    except FileNotFoundError:
        yield None  # no run has ever held it: none can be building
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield str(_busy(home, descriptor))
        else:
            yield None
    finally:
        os.close(descriptor)


def _busy(home: Path, descriptor: int) -> HomeBusy:
    """The refusal, naming the holder from its line in the lock file."""
    holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip()
    return HomeBusy(home, holder or "another process")
