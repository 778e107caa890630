"""`generate()`: a deterministic landing folder of sample exports, as EXPORTS.md describes them."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from dagster_project.defs.ingest.contract import ENTITIES

from .build import Plan, add_months, build
from .dirty import DirtyCase, write_dirty
from .profiles import load_stores
from .render import create_lookups, deal_styles, plan_exports, write_file

DEFAULT_END_MONTH = date(2021, 11, 1)


@dataclass
class GenerateSummary:
    """What `generate()` wrote: files and data rows per entity, and the dirty cases."""

    out: Path
    seed: int
    first_month: date
    last_month: date
    scale: float
    files: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    dirty: dict[str, DirtyCase] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        lines = [
            f"Sample exports in {self.out} (seed {self.seed}, scale {self.scale:g}, "
            f"{self.first_month:%Y-%m} .. {self.last_month:%Y-%m}):",
            f"  {'entity':<12}{'files':>7}{'rows':>14}",
        ]
        for entity in ENTITIES:
            lines.append(
                f"  {entity:<12}{self.files.get(entity, 0):>7}{self.rows.get(entity, 0):>14,}"
            )
        lines.append(
            f"  {'total':<12}{sum(self.files.values()):>7}{sum(self.rows.values()):>14,}"
            f"   {self.bytes / 1e6:,.1f} MB in {self.seconds:.1f} s"
        )
        if self.dirty:
            lines.append(f"Dirty cases ({len(self.dirty)}), one file each:")
            for case in self.dirty.values():
                rows = "" if case.data_rows is None else f" {case.bad_rows}/{case.data_rows} bad"
                lines.append(f"  {case.name:<26}{case.expect:<10}{rows:<10} {case.file}")
        return "\n".join(lines)


def generate(
    out: Path,
    seed: int = 7,
    months: int = 12,
    scale: float = 1.0,
    dirty: bool = False,
    end_month: date = DEFAULT_END_MONTH,
) -> GenerateSummary:
    """Write `months` months of sample exports ending with `end_month` into `out`.

    `out/orders/`, `out/refunds/`, `out/fans/` and `out/violations/` get the clean exports
    (about 50,000 orders per unit of `scale`); with `dirty`, also one file per bad-input
    case of EXPORTS.md. The same arguments give byte-identical files. Each file appears
    under its final name only once complete, so a landing sensor never sees half a file.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    if scale <= 0:
        raise ValueError("scale must be positive")
    started = time.perf_counter()
    end_month = end_month.replace(day=1)
    window = tuple(add_months(end_month, k - months + 1) for k in range(months))
    plan = Plan(seed=seed, months=window, scale=scale, stores=tuple(load_stores()))
    out = Path(out)
    for entity in ENTITIES:
        (out / entity).mkdir(parents=True, exist_ok=True)

    summary = GenerateSummary(out, seed, window[0], window[-1], scale)
    staging = Path(tempfile.mkdtemp(prefix=".trustwh-generate-", dir=out))
    try:
        con = duckdb.connect(config={"temp_directory": str(staging / "spill")})
        con.execute("set enable_progress_bar = false")
        try:
            build(con, plan)
            create_lookups(con, seed)
            exports = plan_exports(plan)
            styles = {}
            for entity in ENTITIES:
                names = [export.name for export in exports if export.entity == entity]
                styles.update(deal_styles(ENTITIES[entity], names, seed))
            written: list[Path] = []
            for export in exports:
                target = out / export.entity / export.name
                rows = write_file(con, export, styles[export.name], staging / export.name, target)
                if rows:
                    written.append(target)
                    summary.files[export.entity] = summary.files.get(export.entity, 0) + 1
                    summary.rows[export.entity] = summary.rows.get(export.entity, 0) + rows
                    summary.bytes += target.stat().st_size
            if dirty:
                summary.dirty = write_dirty(con, plan, out, written)
        finally:
            con.close()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    summary.seconds = time.perf_counter() - started
    return summary
