"""Great Expectations suites as code, one module per export, as plain data.

`SUITES[entity]` lists each check with its stable name, severity ('error' blocks the load,
'warn' is reported only), description and expectation. Dagster declares its asset checks from
these without importing GX; `dagster_project/defs/quality/expectations.py` runs them.
To add a check: append a `Check` (or `sql_check(...)`) to the export's module.
"""

from __future__ import annotations

from . import fans, orders, refunds, violations
from .common import ERROR, WARN, Check, Suite

SUITES: dict[str, Suite] = {
    suite.entity.name: suite
    for suite in (orders.SUITE, refunds.SUITE, fans.SUITE, violations.SUITE)
}

__all__ = ["ERROR", "SUITES", "WARN", "Check", "Suite"]
