"""Releasing a blocked load on purpose: `trustwh release LOAD_ID --reason TEXT`.

The load's ledger status becomes 'published' and `quality.releases` records who released it,
when and why (with the reason it had been blocked for). Nothing is rebuilt here: the next
`trustwh run` sees the ledger changed and builds and publishes the marts with the load.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

import duckdb

from ...home import HomeBusy, lock_home, open_home, unlock_home
from ..ingest.tables import create_tables
from .gate import BLOCKED, PUBLISHED


class ReleaseError(Exception):
    """A release that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Release:
    load_id: str
    entity: str
    file_name: str
    released_by: str
    released_at: datetime
    reason: str
    blocked_reason: str | None


def release_load(warehouse: Path, load_id: str, reason: str, user: str | None = None) -> Release:
    """Publish a blocked load of the working database `warehouse` and record the release."""
    reason = " ".join(reason.split())
    if not reason:
        raise ReleaseError("say why the load may be published: --reason TEXT is recorded")
    if not warehouse.exists():
        raise ReleaseError(f"there is no working database at {warehouse}; run `trustwh run` first")
    home = warehouse.parent
    open_home(home)  # the database's WAL holds the working data: private
    try:
        held = lock_home(home)  # a run would read the ledger while it changes
    except HomeBusy as busy:
        raise ReleaseError(
            f"a run is building {home} ({busy.holder}); release the load when it has finished"
        ) from None
    try:
        return _release(warehouse, load_id, reason, user)
    finally:
        unlock_home(held)


def _release(warehouse: Path, load_id: str, reason: str, user: str | None) -> Release:
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as error:
        first = str(error).strip().splitlines()[0]
        if "lock" in first.lower():
            raise ReleaseError(
                f"the working database {warehouse} is in use by a running build ({first}); "
                "wait until `trustwh run` or the Dagster job finishes, then release again"
            ) from None
        raise ReleaseError(
            f"the working database {warehouse} could not be opened: {first}"
        ) from None
    with con:
        create_tables(con)  # a home from before releases existed gains the table
        row = con.execute(
            "select entity, file_name, status, reason from quality.load_ledger where load_id = ?",
            [load_id],
        ).fetchone()
        if row is None:
            similar = [
                name
                for (name,) in con.execute(
                    "select load_id from quality.load_ledger where status = ? "
                    "order by jaro_winkler_similarity(load_id, ?) desc limit 3",
                    [BLOCKED, load_id],
                ).fetchall()
            ]
            hint = f"; blocked loads include: {', '.join(similar)}" if similar else ""
            raise ReleaseError(f"there is no load {load_id} in quality.load_ledger{hint}")
        entity, file_name, status, blocked_reason = row
        if status != BLOCKED:
            raise ReleaseError(
                f"load {load_id} ({entity}/{file_name}) is {status}, not blocked: only a "
                "blocked load can be released"
            )
        release = Release(
            load_id=load_id,
            entity=entity,
            file_name=file_name,
            released_by=user or getpass.getuser(),
            released_at=datetime.now().replace(microsecond=0),
            reason=reason,
            blocked_reason=blocked_reason,
        )
        con.execute("begin transaction")
        try:
            con.execute(
                "update quality.load_ledger set status = ?, reason = '' where load_id = ?",
                [PUBLISHED, load_id],
            )
            con.execute(
                "insert into quality.releases (load_id, entity, file_name, released_by, "
                "released_at, reason, blocked_reason) values (?, ?, ?, ?, ?, ?, ?)",
                [
                    release.load_id,
                    release.entity,
                    release.file_name,
                    release.released_by,
                    release.released_at,
                    release.reason,
                    release.blocked_reason,
                ],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return release


def release_command(warehouse: Path, load_id: str, reason: str, out: TextIO) -> int:
    """`trustwh release`: 0 when released, 2 with a message when it cannot be."""
    try:
        release = release_load(warehouse, load_id, reason)
    except ReleaseError as error:
        out.write(f"Not released: {error}.\n")
        return 2
    out.write(
        f"Released {release.load_id} ({release.entity}/{release.file_name}): status "
        f"published, recorded in quality.releases by {release.released_by} at "
        f"{release.released_at:%Y-%m-%d %H:%M:%S} because: {release.reason}\n"
        f"It was blocked because: {release.blocked_reason}\n"
    )
    if release.blocked_reason and "superseded by" in release.blocked_reason:
        out.write(
            "Note: a newer file of the same name had superseded it; both loads now count "
            "(the newest version of each key wins).\n"
        )
    out.write("Run `trustwh run` to build and publish the marts with it.\n")
    return 0
