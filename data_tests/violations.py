"""Violations (违规): what every new violations load is checked for."""

from __future__ import annotations

from dagster_project.defs.ingest.contract import VIOLATIONS

from .common import Suite, row_count_check, standard_checks

SUITE = Suite(VIOLATIONS, (*standard_checks(VIOLATIONS), row_count_check(VIOLATIONS)))
