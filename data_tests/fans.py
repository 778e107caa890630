"""Fans (粉丝): what every new fans snapshot load is checked for."""

from __future__ import annotations

from dagster_project.defs.ingest.contract import FANS

from .common import Suite, row_count_check, standard_checks

SUITE = Suite(FANS, (*standard_checks(FANS), row_count_check(FANS)))
