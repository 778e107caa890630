"""The results file of `trustwh bench`: `<out>/<date>-<machine>.md`, a `.json` beside it.

Points measured by an earlier bench of the same day and machine stay in the file (the JSON
is merged by point label), and the hand-written notes below the NOTES marker are kept when
the file is written again.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .measure import Measured
from .runner import STAGES, PointResult, machine_name

BASELINES = ("baseline", "baseline_again")
NOTES = "<!-- notes: written by hand, kept when `trustwh bench` rewrites this file -->"
GiB = 2**30
TARGETS = {  # issue 6, at 10M orders
    "full ≤ 3× baseline": 3.0,
    "incremental ≤ 5% of full": 0.05,
    "idle ≤ 10 s": 10.0,
    "peak RSS ≤ 4 GiB": 4.0,
}


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _ratio(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if percent else f"{value:.2f}×"


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


class PointView:
    """What the tables show of one point."""

    def __init__(self, result: PointResult) -> None:
        self.result = result
        self.stages = {name: result.stage(name) for name in STAGES}

    def seconds(self, stage: str) -> float | None:
        measured = self.stages[stage]
        return None if measured is None else measured.seconds

    @property
    def utf8_share(self) -> float:
        r = self.result
        return r.utf8_bytes / r.landing_bytes if r.landing_bytes else 1.0

    @property
    def baseline_runs(self) -> dict[str, float]:
        """The baseline's runs by stage: first (before the full build), last (after idle)."""
        return {stage: self.seconds(stage) for stage in BASELINES if self.stages[stage]}

    @property
    def baseline_seconds(self) -> float | None:
        """The faster of the baseline's runs."""
        return min(self.baseline_runs.values(), default=None)

    @property
    def baseline_all_bytes(self) -> float | None:
        """The baseline's seconds per byte read, times every landed byte."""
        return _div(self.baseline_seconds, self.utf8_share)

    @property
    def full_over_baseline(self) -> float | None:
        return _div(self.seconds("full"), self.baseline_all_bytes)

    @property
    def incremental_over_full(self) -> float | None:
        return _div(self.seconds("incremental"), self.seconds("full"))

    @property
    def small_day_over_full(self) -> float | None:
        return _div(self.seconds("small_day"), self.seconds("full"))

    @property
    def peak_rss(self) -> float | None:
        peaks = [m.peak_rss for name, m in self.stages.items() if m and name not in BASELINES]
        return max(peaks) / GiB if peaks else None


def _baseline_runs(view: PointView) -> str:
    """'79.3 s' or, with both runs, '79.3 s (first) and 85.1 s (last)'."""
    runs = view.baseline_runs
    if len(runs) < 2:
        return f"{_seconds(view.baseline_seconds)} s"
    return " and ".join(
        f"{_seconds(seconds)} s ({'first' if stage == 'baseline' else 'last'})"
        for stage, seconds in runs.items()
    )


def _step_names(views: list[PointView]) -> list[str]:
    names: list[str] = []
    for view in views:
        for measured in view.stages.values():
            for name in measured.steps if measured else ():
                if name not in names:
                    names.append(name)
    return names


def summary_rows(views: list[PointView]) -> tuple[list[str], list[list[str]]]:
    header = [
        "point",
        "orders",
        "landing MB",
        "baseline s",
        "full s",
        "full/baseline",
        "incremental s",
        "incr/full",
        "small day s",
        "small/full",
        "idle s",
        "peak RSS GiB",
    ]
    rows = []
    for view in views:
        r = view.result
        rows.append(
            [
                r.label,
                f"{r.orders:,}",
                f"{r.landing_bytes / 1e6:,.0f}",
                _seconds(view.baseline_seconds),
                _seconds(view.seconds("full")),
                _ratio(view.full_over_baseline),
                _seconds(view.seconds("incremental")),
                _ratio(view.incremental_over_full, percent=True),
                _seconds(view.seconds("small_day")),
                _ratio(view.small_day_over_full, percent=True),
                _seconds(view.seconds("idle")),
                "–" if view.peak_rss is None else f"{view.peak_rss:.2f}",
            ]
        )
    return header, rows


def stage_rows(view: PointView, steps: list[str]) -> tuple[list[str], list[list[str]]]:
    """Per stage of the runs (Dagster steps, the time outside the run, the whole process)."""
    header = [
        "",
        "full s",
        "× baseline",
        "incremental s",
        "incr/full",
        "small day s",
        "small/full",
        "idle s",
    ]
    runs = [view.stages[name] for name in ("full", "incremental", "small_day", "idle")]
    baseline = view.baseline_all_bytes

    def step(measured: Measured | None, name: str) -> float | None:
        if measured is None:
            return None
        if name == "startup and teardown (outside the run)":
            return measured.overhead
        if name == "whole run (process wall time)":
            return measured.seconds
        return measured.steps.get(name)

    rows = []
    labels = [
        *steps,
        "startup and teardown (outside the run)",
        "whole run (process wall time)",
    ]
    for name in labels:
        values = [step(m, name) for m in runs]
        skipped = [m is not None and name in m.skipped for m in runs]
        cells = [
            "skipped" if skip else _seconds(value)
            for value, skip in zip(values, skipped, strict=True)
        ]
        rows.append(
            [
                name,
                cells[0],
                _ratio(_div(values[0], baseline)),
                cells[1],
                _ratio(_div(values[1], values[0]), percent=True),
                cells[2],
                _ratio(_div(values[2], values[0]), percent=True),
                cells[3],
            ]
        )
    memory = [
        "–"
        if m is None
        else f"{m.peak_rss / GiB:.2f} ({m.max_process_rss / GiB:.2f})"
        + (f" in {m.peak_during}" if m.peak_during else "")
        for m in runs
    ]
    loads = ["–" if m is None else f"{m.load_before:.1f} → {m.load_after:.1f}" for m in runs]
    for name, cells in (
        ("peak RSS GiB, tree (largest process), when", memory),
        ("load average (1 min) before → after", loads),
    ):
        rows.append([name, cells[0], "", cells[1], "", cells[2], "", cells[3]])
    return header, rows


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def targets(view: PointView) -> list[tuple[str, str, bool | None]]:
    idle = view.seconds("idle")
    checks = [
        ("full ≤ 3× baseline", view.full_over_baseline, _ratio(view.full_over_baseline)),
        (
            "incremental ≤ 5% of full",
            view.incremental_over_full,
            _ratio(view.incremental_over_full, percent=True),
        ),
        ("idle ≤ 10 s", idle, _seconds(idle) + " s" if idle is not None else "–"),
        (
            "peak RSS ≤ 4 GiB",
            view.peak_rss,
            f"{view.peak_rss:.2f} GiB" if view.peak_rss is not None else "–",
        ),
    ]
    return [
        (name, shown, None if value is None else value <= TARGETS[name])
        for name, value, shown in checks
    ]


def where_the_time_goes(view: PointView) -> str:
    full = view.stages["full"]
    if full is None:
        return "The full build did not complete; see the error above."
    parts = []
    for name, measured in (
        ("full build", full),
        ("incremental run", view.stages["incremental"]),
        ("small day", view.stages["small_day"]),
    ):
        if measured is None:
            continue
        shares = [
            f"{step} {seconds:.1f} s ({seconds / measured.seconds:.0%})"
            for step, seconds in measured.steps.items()
        ]
        if measured.overhead is not None:
            shares.append(
                f"outside the run {measured.overhead:.1f} s "
                f"({measured.overhead / measured.seconds:.0%})"
            )
        parts.append(f"{name} {measured.seconds:.1f} s: " + ", ".join(shares))
    return "; ".join(parts) + "."


def _day_landed(name: str, day: dict) -> str:
    """'The incremental day (export date …): 15 files, orders 1,000 rows, … (orders: 700 new,
    …)': a crafted day as PointResult keeps it (runner._land_day)."""
    rows = ", ".join(f"{entity} {count:,} rows" for entity, count in day.get("rows", {}).items())
    return (
        f"The {name} day (export date {day.get('export_date')}): {day.get('files')} files, "
        f"{rows} (orders: {day.get('orders_new', 0):,} new, "
        f"{day.get('orders_moved_on', 0):,} moved on, "
        f"{day.get('orders_unchanged', 0):,} unchanged re-exports, against "
        f"{day.get('orders_before', 0):,} orders before)."
    )


def render(machine: dict, views: list[PointView], notes: str) -> str:
    lines = [
        f"# Benchmark {machine['date']} on {machine['name']}",
        "",
        f"Machine: `{machine['node']}`, {machine['cores']} cores, {machine['ram_gib']} GiB RAM, "
        f"{machine['cpu']}; Python {machine['python']}, DuckDB {machine['duckdb']}, "
        f"Dagster {machine['dagster']}, dbt-core {machine['dbt']}.",
        "",
        "Written by `trustwh bench` (`make bench`); each stage ran as its own child process of "
        "the bench, one after the other, on the same landing:",
        "",
        "- **baseline**: a fresh DuckDB file, `create table <entity> as select * from "
        "read_csv([...files...], union_by_name = true, files_to_sniff = -1)` for the four "
        "entities (typed auto-detection). DuckDB's reader has no GB18030, so it reads only the "
        "UTF-8 files; `full/baseline` divides by the baseline scaled to every landed byte "
        "(its seconds ÷ the UTF-8 share of the bytes). It runs twice, first and last: its "
        "time varies between runs, and the ratios use the faster of the two.",
        "- **full**: `trustwh run` on an empty home (ingest, gate, dbt build, publish).",
        "- **incremental**: one more day landed (about 1% of the orders: new orders, orders "
        "whose status moved on, unchanged re-exports; new and approved refunds; new "
        "violations; crafted from the loaded rows, see `dagster_project/bench/day.py`), "
        "then `trustwh run`.",
        "- **small day**: one more day of about 100 orders (the same mix, crafted the same "
        "way), then `trustwh run`: what a day costs before its data. `small/full` is the "
        "part of the incremental target that no model incremental over the day can remove.",
        "- **idle**: `trustwh run` again with nothing new (it finds that before starting a "
        "Dagster run: file sizes and times against the ledger, the build state against the "
        "last publish).",
        "",
        "Wall time is the child process's, start to exit. Step times are STEP_START → "
        "STEP_SUCCESS of the run's Dagster event log; *outside the run* is the rest "
        "(interpreter, imports, definitions, instance). Peak RSS is the sum over the stage's "
        "process tree sampled every 0.1 s (in brackets: the largest single process, by its "
        "own high-water mark `VmHWM`). The load average shows how much else ran: above 1 "
        "per core, other work competed for the CPU and the seconds are inflated.",
        "",
        "## Summary",
        "",
        _markdown_table(*summary_rows(views)),
        "",
    ]
    steps = _step_names(views)
    for view in views:
        r = view.result
        stamp = f"measured {r.measured_at}"
        generated = (
            f"generated in {r.generate_seconds:.0f} s"
            if r.generate_seconds is not None
            else "landing reused from an earlier bench"
        )
        files = ", ".join(f"{count} {entity}" for entity, count in r.files.items())
        lines += [
            f"## {r.label} orders ({stamp})",
            "",
            f"Landing: {files} files, {r.landing_bytes / 1e6:,.1f} MB ({generated}, "
            f"`generate --scale {r.scale:g}`); the baseline read {view.utf8_share:.0%} of the "
            f"bytes (the UTF-8 files) in {_baseline_runs(view)}, "
            f"{_seconds(view.baseline_all_bytes)} s scaled to all bytes. DuckDB memory_limit "
            f"{r.memory_limit}, threads {r.threads}.",
            "",
        ]
        if r.baseline:
            rows = r.baseline.get("rows", {})
            text = r.baseline.get("as_text") or []
            lines.append(
                "Baseline rows: "
                + ", ".join(f"{entity} {count:,}" for entity, count in rows.items())
                + (f"; read as text (not typeable by DuckDB): {', '.join(text)}" if text else "")
                + "."
            )
            lines.append("")
        for name, day in (("incremental", r.day), ("small", r.small_day)):
            if day:
                lines += [_day_landed(name, day), ""]
        if r.error:
            lines += [f"**Error:** {r.error}", ""]
        lines += [_markdown_table(*stage_rows(view, steps)), ""]
        for stage in ("full", "incremental", "small_day"):
            measured = view.stages[stage]
            if measured is None or not measured.dbt_slowest:
                continue
            slowest = ", ".join(
                f"`{name}` {seconds:.1f}" for name, seconds in measured.dbt_slowest.items()
            )
            lines += [
                f"dbt in the {stage.replace('_', ' ')} run: models and seeds "
                f"{measured.dbt_models:.0f} s, data tests {measured.dbt_tests:.0f} s (summed "
                f"over its threads); slowest nodes (s): {slowest}.",
                "",
            ]
        lines += [f"Where the time goes: {where_the_time_goes(view)}", ""]

    largest = max(views, key=lambda view: view.result.orders)
    at = largest.result.label
    caveat = "" if largest.result.orders >= 10_000_000 else " (10M not measured in this file)"
    lines += [
        f"## Targets of issue 6 (measured at {at}{caveat})",
        "",
        _markdown_table(
            ["target", "measured", "met"],
            [
                [name, shown, "–" if met is None else ("yes" if met else "**no**")]
                for name, shown, met in targets(largest)
            ],
        ),
        "",
        NOTES,
        notes.strip(),
        "",
    ]
    return "\n".join(lines)


def _machine() -> dict:
    import dagster
    import dbt.version
    import duckdb

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "name": machine_name(),
        "node": platform.node(),
        "cores": os.cpu_count(),
        "ram_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GiB),
        "cpu": cpu,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "dagster": dagster.__version__,
        "dbt": dbt.version.__version__,
        "date": date.today().isoformat(),
    }


def write_results(out: Path, results: list[PointResult], console: Console) -> Path:
    """Merge `results` into the day's results of this machine; write them and print them."""
    machine = _machine()
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{machine['date']}-{machine['name']}"
    path, data_path = stem.with_suffix(".md"), stem.with_suffix(".json")
    points: dict[str, dict] = {}
    if data_path.exists():
        points = json.loads(data_path.read_text()).get("points", {})
    for result in results:
        points[result.label] = asdict(result)
    ordered = sorted(points.values(), key=lambda point: point["orders"])
    data_path.write_text(
        json.dumps({"machine": machine, "points": {p["label"]: p for p in ordered}}, indent=1)
        + "\n"
    )
    notes = ""
    if path.exists():
        text = path.read_text()
        if NOTES in text:
            notes = text.split(NOTES, 1)[1]
    views = [PointView(PointResult(**point)) for point in ordered]
    path.write_text(render(machine, views, notes))
    print_summary(views, console)
    console.print(f"Results: [bold]{path}[/bold]")
    return path


def print_summary(views: list[PointView], console: Console) -> None:
    header, rows = summary_rows(views)
    table = Table(title="trustwh bench", show_edge=False)
    for index, name in enumerate(header):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
