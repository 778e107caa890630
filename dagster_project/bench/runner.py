"""`trustwh bench`: for each scale point, in one process tree and the same run, load the
same landing four ways and measure each as its own child process:

1. baseline: DuckDB alone, `create table … as select * from read_csv(…)` (see baseline.py);
2. full: `trustwh run` on an empty home;
3. incremental: one more day landed (see day.py), `trustwh run` again;
4. small day: a day of about 100 orders landed, `trustwh run` again: what a run costs before
   its data, the part of a day's cost no incremental model can make proportional to the day;
5. idle: `trustwh run` with nothing new;
6. the baseline again: its time varies from run to run by more than the build's (79–102 s at
   10M orders on one day), so it brackets the runs and the ratios use the faster of the two.

Step times come from the Dagster event log of each run; results go to
`<out>/<date>-<machine>.md` (and a `.json` beside it, which later runs of other points merge
into) and a table is printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from rich.console import Console

from ..defs.ingest.contract import ENTITIES
from ..sample_data.build import BASE_ORDERS
from ..settings import ENV_HOME, ENV_LANDING, Settings
from .baseline import BaselineResult, BaselineSpec, split_by_encoding
from .day import SUFFIX, craft_day
from .measure import Measured, add_dbt_nodes, add_run_steps, run_measured

DEFAULT_POINTS = "0.1M,1M,10M"
STAGES = ("baseline", "full", "incremental", "small_day", "idle", "baseline_again")
SMALL_DAY_ORDERS = 100  # orders rows of the small day, at any point
LANDING_MARK = ".bench-landing.json"


@dataclass
class PointResult:
    label: str
    orders: int
    scale: float
    measured_at: str
    memory_limit: str
    threads: int
    files: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    landing_bytes: int = 0
    utf8_bytes: int = 0  # what the baseline reads (DuckDB cannot read GB18030)
    generate_seconds: float | None = None  # None: an earlier landing was reused
    baseline: dict | None = None  # BaselineResult
    day: dict = field(default_factory=dict)
    small_day: dict = field(default_factory=dict)
    stages: dict[str, dict] = field(default_factory=dict)  # stage → Measured
    error: str | None = None

    def stage(self, name: str) -> Measured | None:
        data = self.stages.get(name)
        return Measured(**data) if data else None


def parse_points(text: str) -> list[tuple[str, int]]:
    """'0.1M,1M,50k' → [('0.1M', 100000), ('1M', 1000000), ('50k', 50000)]."""
    points = []
    for part in text.split(","):
        label = part.strip()
        match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmM]?)", label)
        if not match:
            raise ValueError(f"a point is a number of orders like 0.1M, 1M or 50k, not {label!r}")
        factor = {"": 1, "k": 1_000, "m": 1_000_000}[match[2].lower()]
        orders = round(float(match[1]) * factor)
        if orders < 1_000:
            raise ValueError(f"{label}: a point needs at least 1k orders")
        points.append((label, orders))
    return points


def machine_name() -> str:
    import platform

    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", platform.node() or "machine").strip("-")
    return f"{node}-{os.cpu_count()}c-{round(_memory_bytes() / 2**30)}g"


def _memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _child_env() -> dict[str, str]:
    """The environment of the measured runs: this one's knobs (memory limit, threads),
    without paths that would point the runs elsewhere than the flags say."""
    env = dict(os.environ)
    for name in (ENV_HOME, ENV_LANDING, "TRUSTWH_WAREHOUSE", "TRUSTWH_TEMP_DIR", "DAGSTER_HOME"):
        env.pop(name, None)
    return env


def _trustwh_run(landing: Path, home: Path, log: Path) -> Measured:
    command = [sys.executable, "-m", "dagster_project.cli", "run"]
    since = time.time()
    measured = run_measured(
        [*command, "--landing", str(landing), "--home", str(home)], log, env=_child_env()
    )
    add_run_steps(measured, home / "dagster", since)
    if "dbt" in measured.steps and "dbt" not in measured.skipped:
        add_dbt_nodes(measured, home / "logs")
    return measured


def _landing(point: Path, orders: int, seed: int, console: Console) -> tuple[Path, float | None]:
    """The point's landing: generated, or reused when an earlier bench left the same one."""
    from ..sample_data.generate import generate

    landing = point / "landing"
    wanted = {"orders": orders, "seed": seed}
    mark = landing / LANDING_MARK
    if mark.exists() and json.loads(mark.read_text()) == wanted:
        for stale in landing.glob(f"*/*_{SUFFIX}.csv"):
            stale.unlink()  # the day an earlier bench added
        console.print(f"  reusing the landing in {landing}")
        return landing, None
    shutil.rmtree(landing, ignore_errors=True)
    started = time.perf_counter()
    generate(landing, seed=seed, scale=orders / BASE_ORDERS)
    seconds = time.perf_counter() - started
    mark.write_text(json.dumps(wanted))
    return landing, seconds


def bench_point(
    label: str, orders: int, work: Path, settings: Settings, console: Console, seed: int = 7
) -> PointResult:
    point = work / label
    point.mkdir(parents=True, exist_ok=True)
    logs = point / "logs"
    result = PointResult(
        label=label,
        orders=orders,
        scale=orders / BASE_ORDERS,
        measured_at=datetime.now().isoformat(timespec="seconds"),
        memory_limit=settings.memory_limit,
        threads=settings.threads,
    )
    console.print(f"[bold]{label}[/bold] ({orders:,} orders, generate --scale {result.scale:g})")
    landing, result.generate_seconds = _landing(point, orders, seed, console)
    files, result.utf8_bytes, result.landing_bytes = split_by_encoding(landing)
    for entity in ENTITIES:
        paths = [path for path in (landing / entity).glob("*.csv")]
        result.files[entity] = len(paths)

    spec = BaselineSpec(
        database=str(point / "baseline.duckdb"),
        temp_dir=str(point / "baseline-tmp"),
        memory_limit=settings.memory_limit,
        threads=settings.threads,
        files=files,
    )
    (point / "baseline-spec.json").write_text(json.dumps(asdict(spec)))
    if not _baseline(point, spec, "baseline", result, console):
        return result

    home = point / "home"
    shutil.rmtree(home, ignore_errors=True)
    measured = _trustwh_run(landing, home, logs / "full.log")
    if not _record(result, "full", measured, logs / "full.log", console):
        return result

    result.day = _land_day(home, point / "day", landing, share=0.01)
    measured = _trustwh_run(landing, home, logs / "incremental.log")
    if not _record(result, "incremental", measured, logs / "incremental.log", console):
        return result
    result.small_day = _land_day(
        home, point / "small-day", landing, share=min(0.01, SMALL_DAY_ORDERS / orders)
    )
    measured = _trustwh_run(landing, home, logs / "small_day.log")
    if not _record(result, "small_day", measured, logs / "small_day.log", console):
        return result
    measured = _trustwh_run(landing, home, logs / "idle.log")
    if _record(result, "idle", measured, logs / "idle.log", console):
        _baseline(point, spec, "baseline_again", result, console)
    return result


def _land_day(home: Path, out: Path, landing: Path, share: float) -> dict:
    """Craft the day after the last one loaded (day.py) and land it; what it holds."""
    day = craft_day(home / "warehouse.duckdb", out, share=share, temp_dir=out.parent / "day-tmp")
    for path in day.files:
        shutil.copy2(path, landing / path.parent.name / path.name)
    return {
        "export_date": day.export_date.isoformat(),
        "files": len(day.files),
        "rows": day.rows,
        **day.detail,
    }


def _baseline(
    point: Path, spec: BaselineSpec, stage: str, result: PointResult, console: Console
) -> bool:
    """DuckDB alone loads the landing into a fresh file (baseline.py), as its own child."""
    log = point / "logs" / f"{stage}.log"
    outcome = point / f"{stage}-result.json"
    command = [sys.executable, "-m", "dagster_project.bench.baseline"]
    measured = run_measured(
        [*command, str(point / "baseline-spec.json"), str(outcome)], log, env=_child_env()
    )
    Path(spec.database).unlink(missing_ok=True)
    baseline = json.loads(outcome.read_text()) if measured.returncode == 0 else None
    if baseline:
        # A typed read DuckDB gave up on is not part of a plain load: count only the text read.
        measured.seconds -= baseline["failed_seconds"]
    if not _record(result, stage, measured, log, console):
        return False
    if result.baseline is None:
        result.baseline = baseline
        result.rows = dict(BaselineResult(**baseline).rows)
    return True


def _record(
    result: PointResult, stage: str, measured: Measured, log: Path, console: Console
) -> bool:
    result.stages[stage] = asdict(measured)
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in measured.steps.items())
    console.print(
        f"  {stage:<12}{measured.seconds:>8.1f}s  peak RSS {measured.peak_rss / 2**30:.2f} GiB"
        + (f"  ({steps})" if steps else "")
    )
    if measured.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        result.error = f"{stage} exited {measured.returncode}: " + " / ".join(tail)
        console.print(f"  [red]{stage} failed[/red] (exit {measured.returncode}); see {log}")
        return False
    return True


def run_bench(
    points: list[tuple[str, int]],
    out: Path,
    work: Path | None,
    keep: bool,
    console: Console,
) -> tuple[Path, list[PointResult]]:
    from .report import write_results

    settings = Settings.load()
    scratch = work or Path(tempfile.mkdtemp(prefix="trustwh-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    console.print(
        f"trustwh bench: points {', '.join(label for label, _ in points)}; work in {scratch}; "
        f"DuckDB memory_limit {settings.memory_limit}, threads {settings.threads}"
    )
    results = []
    try:
        for label, orders in points:
            result = bench_point(label, orders, scratch, settings, console)
            results.append(result)
            path = write_results(out, results, console)  # after each point: nothing is lost
            if not keep:
                # Keep the landing only when the work folder was given (reused next time).
                for name in (
                    "home",
                    "day",
                    "small-day",
                    "day-tmp",
                    "baseline-tmp",
                    "baseline.duckdb",
                ):
                    target = scratch / label / name
                    if target.is_dir():
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        target.unlink(missing_ok=True)
                if work is None:
                    shutil.rmtree(scratch / label, ignore_errors=True)
    finally:
        if work is None and not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return path, results


def bench_command(args, console: Console) -> int:
    """`trustwh bench`: exit 0 when every point ran all its stages."""
    try:
        points = parse_points(args.points)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    _, results = run_bench(points, args.out, args.work, args.keep, console)
    return 0 if all(result.error is None for result in results) else 1
