"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.tables import create_tables


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with runs of the whole job first, each kept in one piece (its module
    fixtures build once per worker): `make test` shares the tests between two workers, and a
    long test started last keeps one worker busy while the other has nothing left."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture
def con(tmp_path: Path):
    """A working database with the raw and quality tables, as the loader creates them."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_tables(connection)
    yield connection
    connection.close()
