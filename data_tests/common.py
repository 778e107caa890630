"""What every export's suite checks, built from the export contract (contract.py).

A check is plain data: a stable name (the Dagster asset check and `quality.check_results`
use it), a severity, a description, the Great Expectations expectation that decides it and
its arguments, and `unexpected_rows`: DuckDB SQL over `{batch}` returning the offending rows
with their `_load_id` and a `_detail`. GX validates all new loads of an export in one batch
(pushed down to DuckDB); when an expectation fails, that SQL splits the failure by load, so
one bad load is blocked and the others publish.

No Great Expectations import here: Dagster lists the checks without paying for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dagster_project.defs.ingest.contract import (
    DATE,
    INTEGER,
    MONEY,
    TIMESTAMP,
    Entity,
)

ERROR = "error"  # blocks the load
WARN = "warn"  # reported only

EARLIEST_TIME = "2000-01-01"
# A time may fall on the export date or the day after it (clock skew, late exports), no later.
DAYS_AFTER_EXPORT = 1
# Row count check: a load with more than this factor fewer or more rows than the trailing
# average of the entity's published loads is reported, once there is enough history.
ROW_COUNT_FACTOR = 10
ROW_COUNT_HISTORY = 20
ROW_COUNT_MIN_HISTORY = 3

# The loads being validated: a temporary table on GX's connection, filled per validation.
NEW_LOADS = "new_loads"


@dataclass(frozen=True)
class Check:
    name: str
    severity: str
    description: str
    expectation: str  # a class in great_expectations.expectations
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Offending rows as `_load_id, _detail` over `{batch}`; None for a table-level check,
    # which holds or fails for every load of the batch alike.
    unexpected_rows: str | None = None
    load_level: bool = False  # `unexpected_rows` returns one row per offending load

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR


@dataclass(frozen=True)
class Suite:
    entity: Entity
    checks: tuple[Check, ...]

    @property
    def name(self) -> str:
        return f"raw.{self.entity.name}"

    def check(self, name: str) -> Check:
        return next(check for check in self.checks if check.name == name)


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _rows(where: str, detail: str) -> str:
    return (
        f"select _load_id, concat('row ', _row_number, ': ', {detail}) as _detail "
        f"from {{batch}} where {where}"
    )


def standard_checks(entity: Entity) -> tuple[Check, ...]:
    """The error-level checks every export gets from its contract: required columns present
    and not null, key unique within the load, enum values in the contract's sets, amounts and
    counts non-negative, times within [2000-01-01, export date + 1 day]."""
    required = [column.name for column in entity.columns if column.required]
    checks = [
        Check(
            "required_columns_present",
            ERROR,
            f"The raw table has every required column: {', '.join(required)}.",
            "ExpectTableColumnsToMatchSet",
            {"column_set": required, "exact_match": False},
        )
    ]
    checks += [
        Check(
            f"{name}_not_null",
            ERROR,
            f"Every row has its {name}.",
            "ExpectColumnValuesToNotBeNull",
            {"column": name},
            _rows(f"{name} is null", f"'{name} is missing'"),
        )
        for name in required
    ]
    key = ", ".join(entity.key)
    # Keys are grouped by a 64-bit hash first (one integer per row: a fraction of the cost of
    # grouping the key's text columns, or of GX's compound-uniqueness queries); only rows
    # whose hash repeats are grouped by their real key, so a hash collision is never
    # reported as a repeated key.
    hashed = f"hash({key}, _load_id)"
    repeated_keys = (
        f"select {key}, _load_id from {{batch}} where {hashed} in ("
        f"select {hashed} from {{batch}} group by all having count(*) > 1"
        ") group by all having count(*) > 1"
    )
    checks.append(
        sql_check(
            "key_unique_in_load",
            ERROR,
            f"No key ({key}) appears twice in one load (versions belong in later exports).",
            _rows(
                f"({key}, _load_id) in ({repeated_keys})",
                f"'key ', concat_ws('/', {key}), ' repeated'",
            ),
        )
    )
    for column in entity.columns:
        name = column.name
        if column.values:
            checks.append(
                Check(
                    f"{name}_in_set",
                    ERROR,
                    f"{name} is one of the contract's values: {'/'.join(column.values)}.",
                    "ExpectColumnValuesToBeInSet",
                    {"column": name, "value_set": list(column.values)},
                    _rows(
                        f"{name} is not null and {name} not in "
                        f"({', '.join(map(sql_text, column.values))})",
                        f"'{name} ', {name}",
                    ),
                )
            )
        if column.kind in (MONEY, INTEGER):
            checks.append(
                Check(
                    f"{name}_non_negative",
                    ERROR,
                    f"{name} is not negative.",
                    "ExpectColumnValuesToBeBetween",
                    {"column": name, "min_value": 0},
                    _rows(f"{name} < 0", f"'{name} ', {name}"),
                )
            )
        if column.kind in (TIMESTAMP, DATE):
            query = _rows(
                f"{name} < date '{EARLIEST_TIME}' "
                f"or {name} >= _export_date + interval {DAYS_AFTER_EXPORT + 1} day",
                f"'{name} ', {name}, ' (export date ', _export_date, ')'",
            )
            checks.append(
                Check(
                    f"{name}_in_time_range",
                    ERROR,
                    f"{name} is not before {EARLIEST_TIME} and not after the export date + "
                    f"{DAYS_AFTER_EXPORT} day (the whole day after the export date is allowed).",
                    "UnexpectedRowsExpectation",
                    {"unexpected_rows_query": query},
                    query,
                )
            )
    return tuple(checks)


def row_count_check(entity: Entity) -> Check:
    """Warn when a load's row count is far from the trailing average of the entity's
    published loads (an empty or truncated export, or one repeated many times)."""
    query = f"""
with counted as (
    select _load_id, count(*) as row_count from {{batch}} group by _load_id
),
loads as (
    select {NEW_LOADS}.load_id as _load_id, coalesce(counted.row_count, 0) as row_count
    from {NEW_LOADS} left join counted on counted._load_id = {NEW_LOADS}.load_id
),
history as (
    select rows_loaded from quality.load_ledger
    where entity = '{entity.name}' and status = 'published'
        and load_id not in (select load_id from {NEW_LOADS})
    order by loaded_at desc, load_id desc
    limit {ROW_COUNT_HISTORY}
),
baseline as (
    select avg(rows_loaded) as average, count(*) as loads from history
)
select
    loads._load_id,
    concat(loads.row_count, ' rows; trailing average ', round(baseline.average, 1),
        ' over the last ', baseline.loads, ' published loads') as _detail
from loads cross join baseline
where baseline.loads >= {ROW_COUNT_MIN_HISTORY}
    and (loads.row_count * {ROW_COUNT_FACTOR} < baseline.average
        or loads.row_count > baseline.average * {ROW_COUNT_FACTOR})
""".strip()
    return Check(
        "row_count_near_average",
        WARN,
        f"The load's row count is within a factor of {ROW_COUNT_FACTOR} of the average of the "
        f"last {ROW_COUNT_HISTORY} published {entity.name} loads (checked once there are "
        f"{ROW_COUNT_MIN_HISTORY}).",
        "UnexpectedRowsExpectation",
        {"unexpected_rows_query": query},
        query,
        load_level=True,
    )


def sql_check(name: str, severity: str, description: str, query: str) -> Check:
    """A check written as DuckDB SQL: `query` returns the offending rows (`_load_id`,
    `_detail`) of `{batch}`; GX runs it as an UnexpectedRowsExpectation."""
    return Check(
        name,
        severity,
        description,
        "UnexpectedRowsExpectation",
        {"unexpected_rows_query": query},
        query,
    )


PUBLISHED_LOADS = "select load_id from quality.load_ledger where status = 'published'"
