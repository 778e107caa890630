"""Fixtures shared by the test modules."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.tables import create_tables


@pytest.fixture
def con(tmp_path: Path):
    """A working database with the raw and quality tables, as the loader creates them."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    create_tables(connection)
    yield connection
    connection.close()
