"""The governance report: one static page over the quality tables of `serving.duckdb`.

read_report_data (serving.duckdb, read-only) → ReportData → render_report (pure: data → HTML,
Jinja2 templates beside this module, inline CSS and SVG, no scripts, nothing fetched) →
write_report (a temp file renamed over `HOME/quality/index.html`, so a reader never opens half
a page). Everything shown is escaped: file names and reasons come from outside. Quarantined
records are the masked ones the serving database holds, and anything phone-shaped is masked
again before it is shown.
"""

from __future__ import annotations

import functools
import http.server
import json
import math
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import jinja2
from markupsafe import Markup, escape

from ...home import make_readable
from ...local_server import serve_until_stopped
from ...settings import Settings
from .data_docs import DATA_DOCS_INDEX, try_make_offline

TEMPLATES = Path(__file__).with_name("templates")
REPORT_FOLDER = "quality"
# Caps that keep the page readable with thousands of loads; the tables hold everything.
LOAD_LIMIT = 500
ATTENTION_LIMIT = 200
FAILED_CHECK_LIMIT = 300
QUARANTINE_FILE_LIMIT = 100
QUARANTINE_SAMPLE_PER_LOAD = 5
QUARANTINE_SAMPLE_LIMIT = 200
TREND_BUCKETS = 60
COHORT_LIMIT = 24
VALUE_CHARS = 80
STATUS_ORDER = ("published", "released", "blocked", "rejected", "duplicate")
# A mainland mobile number anywhere in a shown value (never inside a longer digit run).
PHONE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


@dataclass(frozen=True)
class Load:
    load_id: str
    entity: str
    file_name: str
    export_date: date | None
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    reason: str
    loaded_at: datetime | None
    checks_passed: int = 0
    checks_failed: int = 0
    failed_checks: tuple[str, ...] = ()
    released_by: str | None = None
    released_at: datetime | None = None


@dataclass(frozen=True)
class CheckFailure:
    load_id: str
    entity: str
    file_name: str
    check_name: str
    severity: str
    observed_value: float | None
    details: str
    checked_at: datetime | None


@dataclass(frozen=True)
class QuarantineFile:
    load_id: str
    entity: str
    file_name: str
    status: str
    rows_read: int
    rows_quarantined: int
    top_reason: str


@dataclass(frozen=True)
class QuarantinedRow:
    load_id: str
    entity: str
    file_name: str
    row_number: int
    reason: str
    raw_record: str | None  # JSON of the MASKED record, as serving.duckdb holds it


@dataclass(frozen=True)
class TrendPoint:
    period: date
    rows_read: int
    rows_quarantined: int
    loads: int
    blocked: int
    checks: int
    failed_error: int
    failed_warn: int


@dataclass(frozen=True)
class RetentionCell:
    cohort_month: date
    month_offset: int
    cohort_buyers: int
    active_buyers: int
    retention_rate: float


@dataclass
class ReportData:
    generated_at: datetime
    source: str
    published_at: datetime | None = None
    status_counts: dict[str, int] = field(default_factory=dict)
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    checks_run: int = 0
    checks_failed: int = 0
    blocked: list[Load] = field(default_factory=list)
    rejected: list[Load] = field(default_factory=list)
    loads: list[Load] = field(default_factory=list)
    failed_checks: list[CheckFailure] = field(default_factory=list)
    quarantine_files: list[QuarantineFile] = field(default_factory=list)
    quarantine_sample: list[QuarantinedRow] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)
    trend_period: str = "day"
    retention: list[RetentionCell] = field(default_factory=list)
    threshold: float | None = None
    gx_docs: str | None = None  # relative link to GX Data Docs, when they were built

    @property
    def loads_total(self) -> int:
        return sum(self.status_counts.values())


# ----------------------------------------------------------------------------- reading


def report_dir(settings: Settings) -> Path:
    return settings.home / REPORT_FOLDER


def read_report_data(
    serving: Path, *, threshold: float | None = None, out_dir: Path | None = None
) -> ReportData:
    """Everything the page shows, from the published database (opened read-only)."""
    data = ReportData(
        generated_at=datetime.now().replace(microsecond=0), source=str(serving), threshold=threshold
    )
    if out_dir is not None:
        data.gx_docs = find_gx_docs(out_dir)
    with duckdb.connect(str(serving), read_only=True) as con:
        tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        has_checks = "quality.check_results" in tables
        if "quality.publish_log" in tables:
            row = con.execute("select max(published_at) from quality.publish_log").fetchone()
            data.published_at = row[0] if row else None
        if "quality.load_ledger" in tables:
            ledger = _ledger(has_releases="quality.releases" in tables)
            _read_loads(con, data, ledger, has_checks)
            if has_checks:
                _read_checks(con, data)
            if "quality.quarantine" in tables:
                _read_quarantine(con, data, ledger)
            _read_trend(con, data, has_checks)
        if "marts.platform_cohort_retention" in tables:
            _read_retention(con, data)
    return data


def _ledger(has_releases: bool) -> str:
    """The load ledger as the page shows it: a blocked load published on purpose with
    `trustwh release` has status 'released', the release's reason, and who released it when."""
    if not has_releases:
        return (
            "(select *, null::varchar as released_by, null::timestamp as released_at "
            "from quality.load_ledger)"
        )
    return """(
        select
            ledger.* replace (
                if(releases.load_id is null, ledger.status, 'released') as status,
                coalesce(releases.reason, ledger.reason) as reason
            ),
            releases.released_by,
            releases.released_at
        from quality.load_ledger as ledger
        left join quality.releases as releases on releases.load_id = ledger.load_id
    )"""


_LOAD_COLUMNS = (
    "ledger.load_id, ledger.entity, ledger.file_name, ledger.export_date, ledger.status, "
    "ledger.rows_read, ledger.rows_loaded, ledger.rows_quarantined, "
    "coalesce(ledger.reason, ''), ledger.loaded_at, ledger.released_by, ledger.released_at"
)
_NEWEST_FIRST = (
    "ledger.loaded_at desc nulls last, ledger.export_date desc nulls last, "
    "ledger.entity, ledger.file_name desc"
)


def _loads(
    con: duckdb.DuckDBPyConnection, ledger: str, where: str, limit: int, has_checks: bool
) -> list[Load]:
    checks = (
        """
        left join (
            select
                load_id,
                count(*) filter (where passed) as checks_passed,
                count(*) filter (where not passed) as checks_failed,
                list(distinct check_name order by check_name) filter (where not passed)
                    as failed_checks
            from quality.check_results group by load_id
        ) as checks on checks.load_id = ledger.load_id
        """
        if has_checks
        else ""
    )
    check_columns = (
        "coalesce(checks.checks_passed, 0), coalesce(checks.checks_failed, 0), "
        "coalesce(checks.failed_checks, [])"
        if has_checks
        else "0, 0, []::varchar[]"
    )
    rows = con.execute(
        f"select {_LOAD_COLUMNS}, {check_columns} from {ledger} as ledger {checks} "
        f"where {where} order by {_NEWEST_FIRST} limit {int(limit)}"
    ).fetchall()
    return [
        Load(
            *row[:8],
            reason=row[8],
            loaded_at=row[9],
            released_by=row[10],
            released_at=row[11],
            checks_passed=row[12],
            checks_failed=row[13],
            failed_checks=tuple(row[14] or ()),
        )
        for row in rows
    ]


def _read_loads(
    con: duckdb.DuckDBPyConnection, data: ReportData, ledger: str, has_checks: bool
) -> None:
    counts = dict(con.execute(f"select status, count(*) from {ledger} group by status").fetchall())
    order = {status: rank for rank, status in enumerate(STATUS_ORDER)}
    data.status_counts = {
        status: counts[status]
        for status in sorted(counts, key=lambda status: (order.get(status, len(order)), status))
    }
    totals = con.execute(
        "select coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
        "coalesce(sum(rows_quarantined), 0) from quality.load_ledger"
    ).fetchone()
    data.rows_read, data.rows_loaded, data.rows_quarantined = (int(value) for value in totals)
    data.blocked = _loads(con, ledger, "ledger.status = 'blocked'", ATTENTION_LIMIT, has_checks)
    data.rejected = _loads(con, ledger, "ledger.status = 'rejected'", ATTENTION_LIMIT, has_checks)
    data.loads = _loads(con, ledger, "true", LOAD_LIMIT, has_checks)


def _read_checks(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    data.checks_run, data.checks_failed = con.execute(
        "select count(*), count(*) filter (where not passed) from quality.check_results"
    ).fetchone()
    rows = con.execute(
        f"""
        select
            checks.load_id, coalesce(ledger.entity, ''), coalesce(ledger.file_name, ''),
            checks.check_name, checks.severity, checks.observed_value,
            coalesce(checks.details, ''), checks.checked_at
        from quality.check_results as checks
        left join quality.load_ledger as ledger on ledger.load_id = checks.load_id
        where not checks.passed
        order by checks.checked_at desc, checks.severity, ledger.file_name, checks.check_name
        limit {FAILED_CHECK_LIMIT}
        """
    ).fetchall()
    data.failed_checks = [CheckFailure(*row) for row in rows]


def _read_quarantine(con: duckdb.DuckDBPyConnection, data: ReportData, ledger: str) -> None:
    rows = con.execute(
        f"""
        with reasons as (
            select load_id, reason, count(*) as row_count
            from quality.quarantine group by all
        ),
        top_reasons as (
            select load_id, arg_max(reason, row_count) as top_reason
            from reasons group by load_id
        )
        select
            ledger.load_id, ledger.entity, ledger.file_name, ledger.status, ledger.rows_read,
            ledger.rows_quarantined, coalesce(top_reasons.top_reason, '')
        from {ledger} as ledger
        left join top_reasons on top_reasons.load_id = ledger.load_id
        where ledger.rows_quarantined > 0
        order by ledger.status = 'blocked' desc, {_NEWEST_FIRST}
        limit {QUARANTINE_FILE_LIMIT}
        """
    ).fetchall()
    data.quarantine_files = [QuarantineFile(*row) for row in rows]
    # A few rows of every load (blocked loads first, newest first), not the first 200 of one.
    rows = con.execute(
        f"""
        with numbered as (
            select
                quarantine.load_id, quarantine.entity, quarantine.file_name,
                quarantine.row_number, quarantine.reason,
                quarantine.raw_record::varchar as raw_record,
                ledger.status, ledger.loaded_at, ledger.export_date,
                row_number() over (
                    partition by quarantine.load_id order by quarantine.row_number
                ) as nth
            from quality.quarantine as quarantine
            left join quality.load_ledger as ledger on ledger.load_id = quarantine.load_id
        )
        select load_id, entity, file_name, row_number, reason, raw_record
        from numbered as ledger
        where nth <= {QUARANTINE_SAMPLE_PER_LOAD}
        order by ledger.status = 'blocked' desc, {_NEWEST_FIRST}, ledger.row_number
        limit {QUARANTINE_SAMPLE_LIMIT}
        """
    ).fetchall()
    data.quarantine_sample = [QuarantinedRow(*row) for row in rows]


def _read_trend(con: duckdb.DuckDBPyConnection, data: ReportData, has_checks: bool) -> None:
    span = con.execute(
        "select count(distinct export_date) from quality.load_ledger where rows_read > 0"
    ).fetchone()[0]
    data.trend_period = "day" if span <= TREND_BUCKETS else "month"
    checks = (
        """
        left join (
            select load_id, count(*) as checks,
                count(*) filter (where not passed and severity = 'error') as failed_error,
                count(*) filter (where not passed and severity != 'error') as failed_warn
            from quality.check_results group by load_id
        ) as checks on checks.load_id = ledger.load_id
        """
        if has_checks
        else ""
    )
    check_columns = (
        "coalesce(sum(checks.checks), 0), coalesce(sum(checks.failed_error), 0), "
        "coalesce(sum(checks.failed_warn), 0)"
        if has_checks
        else "0, 0, 0"
    )
    rows = con.execute(
        f"""
        select
            date_trunc('{data.trend_period}', ledger.export_date)::date as period,
            coalesce(sum(ledger.rows_read), 0), coalesce(sum(ledger.rows_quarantined), 0),
            count(*), count(*) filter (where ledger.status = 'blocked'), {check_columns}
        from quality.load_ledger as ledger {checks}
        where ledger.export_date is not null and ledger.rows_read > 0
        group by all order by period desc limit {TREND_BUCKETS}
        """
    ).fetchall()
    data.trend = [TrendPoint(*(int(v) if i else v for i, v in enumerate(row))) for row in rows]
    data.trend.reverse()


def _read_retention(con: duckdb.DuckDBPyConnection, data: ReportData) -> None:
    rows = con.execute(
        f"""
        select cohort_month, month_offset, cohort_buyers, active_buyers, retention_rate
        from marts.platform_cohort_retention
        where cohort_month in (
            select distinct cohort_month from marts.platform_cohort_retention
            order by cohort_month desc limit {COHORT_LIMIT}
        ) and month_offset < {COHORT_LIMIT}
        order by cohort_month, month_offset
        """
    ).fetchall()
    data.retention = [RetentionCell(*row) for row in rows]


def find_gx_docs(out_dir: Path) -> str | None:
    """A relative link to GX Data Docs under `out_dir/gx/`, if they were built."""
    gx = out_dir / "gx"
    candidates = sorted(gx.glob("**/index.html"), key=lambda path: (len(path.parts), path))
    return candidates[0].relative_to(out_dir).as_posix() if candidates else None


# ----------------------------------------------------------------------------- rendering


def mask_phones(text: str) -> str:
    """Keep at most a phone's first 3 and last 4 digits, whatever the input claims to be."""
    return PHONE.sub(r"\1****\2", text)


def record_fields(raw_record: str | None) -> list[tuple[str, str]]:
    """A masked record as (field, value) pairs to show: by column name, or by position for a
    row whose field count was wrong."""
    if not raw_record:
        return []
    try:
        record = json.loads(raw_record)
    except ValueError:
        return [("record", _shown(raw_record))]
    if isinstance(record, dict) and isinstance(record.get("fields"), list):
        items = [(f"#{index}", value) for index, value in enumerate(record["fields"], start=1)]
    elif isinstance(record, dict):
        items = list(record.items())
    else:
        items = [("record", record)]
    return [
        (_shown(str(key)), "∅" if value is None else _shown(str(value))) for key, value in items
    ]


def _shown(text: str) -> str:
    text = mask_phones(text)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def reason_field(reason: str) -> str | None:
    """The column a quarantine reason names (`paid_amount: negative amount`), if any."""
    match = re.match(r"([a-z_]+): ", reason)
    return match[1] if match else None


_COLORS = {
    "ink": "#1f2933",
    "muted": "#6b7785",
    "grid": "#e4e7eb",
    "bar": "#3b82b6",
    "bad": "#c2410c",
    "warn": "#d9a21b",
    "error": "#b42318",
}


def _fmt_period(period: date, kind: str) -> str:
    return period.strftime("%Y-%m-%d" if kind == "day" else "%Y-%m")


def _svg_frame(
    width: float, height: float, label: str, body: list[str], fixed: bool = False
) -> Markup:
    """An inline SVG: fluid charts fill their column, fixed ones (the heatmap) keep their size."""
    size = f'width="{width:.0f}" height="{height:.0f}"' if fixed else 'width="100%"'
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'{size} role="img" aria-label="{escape(label)}" class="chart">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _axis_labels(points: list[date], kind: str, x_of: Callable[[int], float], y: float) -> str:
    """A few period labels under the bars (first, last and evenly spaced between)."""
    if not points:
        return ""
    step = max(1, math.ceil(len(points) / 6))
    picks = sorted({*range(0, len(points), step), len(points) - 1})
    return "".join(
        f'<text x="{x_of(i):.1f}" y="{y:.1f}" font-size="10" text-anchor="middle" '
        f'fill="{_COLORS["muted"]}">{escape(_fmt_period(points[i], kind))}</text>'
        for i in picks
    )


@dataclass(frozen=True)
class _BarPlot:
    """The geometry of the period bar charts: a slot per period, values from 0 to `ceiling`."""

    periods: int
    ceiling: float
    width: int = 560
    height: int = 220
    left: int = 44
    right: int = 12
    top: int = 14
    bottom: int = 34

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def base(self) -> float:
        return self.top + self.plot_h

    @property
    def slot(self) -> float:
        return (self.width - self.left - self.right) / self.periods

    def x_of(self, i: int) -> float:
        return self.left + self.slot * (i + 0.5)

    def y_of(self, value: float) -> float:
        return self.top + self.plot_h * (1 - value / self.ceiling)

    def bar(self, i: int, y: float, bar_h: float, color: str, tip: str) -> str:
        return (
            f'<rect x="{self.x_of(i) - self.slot * 0.38:.1f}" y="{y:.1f}" '
            f'width="{self.slot * 0.76:.1f}" height="{bar_h:.1f}" fill="{color}">'
            f"<title>{escape(tip)}</title></rect>"
        )

    def svg(
        self, label: str, marks: list[str], periods: list[date], kind: str, percent: bool
    ) -> Markup:
        """The chart: grid and value labels, the marks, then the period labels."""
        body = _grid(self.left, self.width - self.right, self.y_of, self.ceiling, percent)
        body += marks
        body.append(_axis_labels(periods, kind, self.x_of, self.height - self.bottom + 16))
        return _svg_frame(self.width, self.height, label, body)


def quarantine_chart(trend: list[TrendPoint], kind: str, threshold: float | None) -> Markup:
    """Bars of the share of rows set aside per export period; red where a load was blocked."""
    label = f"Share of rows quarantined by export {kind}"
    if not trend:
        return Markup('<p class="empty">No loads with rows yet.</p>')
    shares = [p.rows_quarantined / p.rows_read if p.rows_read else 0.0 for p in trend]
    plot = _BarPlot(len(trend), _nice_ceiling(max([*shares, threshold or 0.0, 0.01])))
    marks = []
    for i, (point, share) in enumerate(zip(trend, shares, strict=True)):
        color = _COLORS["bad"] if point.blocked else _COLORS["bar"]
        bar_h = max(plot.plot_h * share / plot.ceiling, 1.0 if point.rows_quarantined else 0.0)
        tip = (
            f"{_fmt_period(point.period, kind)}: {point.rows_quarantined:,} of "
            f"{point.rows_read:,} rows quarantined ({share:.2%}); {point.loads} loads, "
            f"{point.blocked} blocked"
        )
        marks.append(plot.bar(i, plot.base - bar_h, bar_h, color, tip))
    if threshold is not None:
        y, x2 = plot.y_of(threshold), plot.width - plot.right
        marks.append(
            f'<line x1="{plot.left}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{_COLORS["error"]}" stroke-dasharray="4 3"/>'
            f'<text x="{x2}" y="{y - 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="{_COLORS["error"]}">gate {threshold:.0%}</text>'
        )
    return plot.svg(label, marks, [p.period for p in trend], kind, percent=True)


def failures_chart(trend: list[TrendPoint], kind: str) -> Markup:
    """Stacked bars of failed checks per export period: error level below, warn above."""
    label = f"Failed checks by export {kind}"
    if not any(p.checks for p in trend):
        return Markup('<p class="empty">No checks recorded yet.</p>')
    peak = max(p.failed_error + p.failed_warn for p in trend)
    plot = _BarPlot(len(trend), _nice_ceiling(max(peak, 1)))
    marks = []
    for i, point in enumerate(trend):
        tip = (
            f"{_fmt_period(point.period, kind)}: {point.failed_error} error and "
            f"{point.failed_warn} warn failures of {point.checks} checks"
        )
        base = plot.base
        for count, color in ((point.failed_error, "error"), (point.failed_warn, "warn")):
            if not count:
                continue
            bar_h = plot.plot_h * count / plot.ceiling
            base -= bar_h
            marks.append(plot.bar(i, base, bar_h, _COLORS[color], tip))
        if not point.failed_error and not point.failed_warn and point.checks:
            marks.append(
                f'<circle cx="{plot.x_of(i):.1f}" cy="{base - 3:.1f}" r="2" '
                f'fill="{_COLORS["grid"]}"><title>{escape(tip)}</title></circle>'
            )
    return plot.svg(label, marks, [p.period for p in trend], kind, percent=False)


def _nice_ceiling(value: float) -> float:
    exponent = math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= factor * 10**exponent:
            return factor * 10**exponent
    return 10 ** (exponent + 1)


def _grid(
    x1: float, x2: float, y_of: Callable[[float], float], ceiling: float, percent: bool
) -> list[str]:
    lines = []
    for step in range(5):
        value = ceiling * step / 4
        y = y_of(value)
        lines.append(
            f'<line x1="{x1}" x2="{x2}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_COLORS["grid"]}"/>'
        )
        if percent:
            text = f"{value * 100:.3g}%"
        elif value == int(value):  # counts: label whole numbers only
            text = f"{int(value):,}"
        else:
            continue
        lines.append(
            f'<text x="{x1 - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="{_COLORS["muted"]}">{escape(text)}</text>'
        )
    return lines


def retention_heatmap(cells: list[RetentionCell]) -> Markup:
    """Cohort month × months since first purchase, shaded by retention (offset 0 is 100% by
    definition, so the shading scales to the best later month)."""
    if not cells:
        return Markup('<p class="empty">No cohorts yet.</p>')
    cohorts = sorted({cell.cohort_month for cell in cells})
    offsets = sorted({cell.month_offset for cell in cells})
    by_key = {(cell.cohort_month, cell.month_offset): cell for cell in cells}
    buyers = {cell.cohort_month: cell.cohort_buyers for cell in cells}
    later = [cell.retention_rate for cell in cells if cell.month_offset > 0]
    scale = max([*later, 0.01])
    cell_w, cell_h, left, top = 54, 28, 170, 34
    width = left + cell_w * len(offsets) + 8
    height = top + cell_h * len(cohorts) + 8
    body = [
        f'<text x="{left}" y="12" font-size="10" fill="{_COLORS["muted"]}">'
        "months since first purchase →</text>"
    ]
    for j, offset in enumerate(offsets):
        body.append(
            f'<text x="{left + cell_w * (j + 0.5):.1f}" y="{top - 6}" font-size="10" '
            f'text-anchor="middle" fill="{_COLORS["muted"]}">+{offset}</text>'
        )
    for i, cohort in enumerate(cohorts):
        y = top + cell_h * i
        body.append(
            f'<text x="{left - 8}" y="{y + cell_h * 0.65:.1f}" font-size="12" text-anchor="end" '
            f'fill="{_COLORS["ink"]}">{cohort:%Y-%m} · {buyers[cohort]:,} buyers</text>'
        )
        for j, offset in enumerate(offsets):
            cell = by_key.get((cohort, offset))
            if cell is None:
                continue
            x = left + cell_w * j
            # Offset 0 is the cohort itself (100% by definition): neutral, not "best".
            strength = 0.0 if offset == 0 else min(cell.retention_rate / scale, 1.0)
            fill = "#dfe3e8" if offset == 0 else _blend(strength)
            ink = "#ffffff" if strength > 0.55 else _COLORS["ink"]
            tip = (
                f"cohort {cohort:%Y-%m}, +{offset} months: {cell.active_buyers:,} of "
                f"{cell.cohort_buyers:,} buyers ({cell.retention_rate:.1%})"
            )
            body.append(
                f'<g><title>{escape(tip)}</title><rect x="{x + 1}" y="{y + 1}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}" rx="2" fill="{fill}"/>'
                f'<text x="{x + cell_w / 2:.1f}" y="{y + cell_h * 0.65:.1f}" font-size="12" '
                f'text-anchor="middle" fill="{ink}">{cell.retention_rate:.0%}</text></g>'
            )
    return _svg_frame(width, height, "Platform cohort retention heatmap", body, fixed=True)


def _blend(strength: float) -> str:
    """From near-white (0) to deep teal (1)."""
    low, high = (240, 246, 248), (14, 94, 110)
    rgb = (round(a + (b - a) * strength) for a, b in zip(low, high, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _status_class(status: str) -> str:
    return re.sub(r"[^a-z]", "", status.lower()) or "unknown"


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["status_class"] = _status_class
    env.filters["masked"] = lambda text: mask_phones(str(text))
    env.filters["record_fields"] = record_fields
    env.filters["reason_field"] = reason_field
    env.filters["num"] = lambda value: f"{value:,}" if value is not None else ""
    env.filters["when"] = lambda value: "" if value is None else f"{value:%Y-%m-%d %H:%M}"
    env.filters["day"] = lambda value: "" if value is None else f"{value:%Y-%m-%d}"
    env.filters["observed"] = lambda value: "" if value is None else f"{value:.4g}"
    return env


def render_report(data: ReportData) -> str:
    """The page as HTML text: pure, no I/O beyond reading the templates."""
    charts = {
        "quarantine": quarantine_chart(data.trend, data.trend_period, data.threshold),
        "failures": failures_chart(data.trend, data.trend_period),
        "retention": retention_heatmap(data.retention),
    }
    share = data.rows_quarantined / data.rows_read if data.rows_read else 0.0
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            data=data,
            charts=charts,
            quarantine_share=share,
            limits={"sample": QUARANTINE_SAMPLE_PER_LOAD},
        )
    )


# ----------------------------------------------------------------------------- writing


def write_report(html: str, out_dir: Path) -> Path:
    """Write `out_dir/index.html` whole: a temp file beside it, then an atomic rename."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    staged = out_dir / f".index-{uuid.uuid4().hex[:8]}.html"
    try:
        staged.write_text(html, encoding="utf-8")
        make_readable(out_dir)  # the page, the folder and the GX pages it links
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def build_report(settings: Settings) -> Path:
    """Read serving.duckdb and (re)write the report; return the page's path."""
    out_dir = report_dir(settings)
    _data_docs_offline(out_dir)
    data = read_report_data(
        settings.serving_path, threshold=settings.quarantine_threshold, out_dir=out_dir
    )
    return write_report(render_report(data), out_dir)


def _data_docs_offline(out_dir: Path) -> None:
    """The GX pages the report links must open offline, whichever build wrote them."""
    site = out_dir / "gx" / DATA_DOCS_INDEX.parent
    if site.is_dir():
        try_make_offline(site)


def report_command(
    settings: Settings, serve: bool, port: int, say: Callable[[str], Any] = print
) -> int:
    """`trustwh report`: print the page's path, (re)building it when it is missing or older
    than serving.duckdb; with `serve`, serve the folder on 127.0.0.1 until Ctrl-C."""
    page = report_dir(settings) / "index.html"
    serving = settings.serving_path
    if not page.exists() or (serving.exists() and serving.stat().st_mtime > page.stat().st_mtime):
        if not serving.exists():
            say(
                f"No report yet: {serving} does not exist. Build the warehouse first with "
                "`trustwh run`."
            )
            return 2
        try:
            build_report(settings)
        except duckdb.Error as error:
            say(f"Cannot read {serving}: {str(error).splitlines()[0]}")
            return 2
    else:
        # A run that failed after validating new loads wrote GX pages but no report.
        _data_docs_offline(page.parent)
    say(str(page))
    if not serve:
        return 0
    handler = functools.partial(_QuietHandler, directory=str(page.parent))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        say(f"Cannot listen on 127.0.0.1:{port}: {error.strerror}; try --port")
        return 2
    with server:
        say(f"Serving http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
        serve_until_stopped(server)
    return 0


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
