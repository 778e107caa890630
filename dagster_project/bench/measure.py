"""Measuring a stage: a child process tree's wall time and peak memory, and Dagster's step
times of the run it made.

Peak RSS is sampled: the resident pages of every process descending from the child, summed,
every `interval` seconds (a tree's peak is a sum of processes alive together, which no
rusage field gives). Each sample also reads every process's own high-water mark (`VmHWM`),
exact between samples, which the sampled sum can never be below. Not `ru_maxrss` of
`wait4`: a child's starts at its parent's size when it was forked (Linux keeps the old
high-water mark across exec), so a large bench process would inflate every stage.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
STEP_LABELS = {"ingest_exports": "ingest", "dbt_models": "dbt", "serving__database": "publish"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DBT_NODE = re.compile(
    r"\d+ of \d+ (?P<kind>OK created sql \w+ model|OK loaded seed file|PASS|WARN|FAIL|ERROR) "
    r"(?P<name>\S+) \.* \[.*? in (?P<seconds>[0-9.]+)s\]"
)


@dataclass
class Measured:
    """One stage: its wall time, memory and exit code."""

    seconds: float
    peak_rss: int  # bytes: sampled sum over the process tree
    max_process_rss: int  # bytes: the largest single process (kernel rusage)
    returncode: int
    load_before: float  # 1-minute load average when the stage started
    load_after: float
    steps: dict[str, float] = field(default_factory=dict)  # label → seconds (Dagster events)
    skipped: list[str] = field(default_factory=list)
    run_seconds: float | None = None  # RUN_START → RUN_SUCCESS/FAILURE
    peak_at: float = 0.0  # epoch seconds of the peak sample
    peak_during: str = ""  # the step running at the peak, or "outside the run"
    dbt_models: float = 0.0  # seconds summed over dbt's models and seeds (2 threads: > wall)
    dbt_tests: float = 0.0  # seconds summed over dbt's data tests
    dbt_slowest: dict[str, float] = field(default_factory=dict)  # node → seconds, top 8

    @property
    def overhead(self) -> float | None:
        """Process start, imports, definitions and the instance: wall time outside the run."""
        return None if self.run_seconds is None else max(0.0, self.seconds - self.run_seconds)


def _tree_rss(root: int) -> tuple[int, int]:
    """Resident bytes of `root` and all its descendants, summed, and the largest high-water
    mark among them, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue  # the process ended while we looked
        fields = stat[stat.rfind(b")") + 2 :].split()  # after the command name (may hold spaces)
        pid = int(entry.name)
        children[int(fields[1])].append(pid)  # field 4: ppid
        rss[pid] = int(fields[21]) * PAGE  # field 24: resident pages
    total, largest, pending = 0, 0, [root]
    while pending:
        pid = pending.pop()
        total += rss.get(pid, 0)
        largest = max(largest, _high_water(pid))
        pending.extend(children.get(pid, ()))
    return total, largest


def _high_water(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass  # the process ended while we looked
    return 0


def run_measured(
    command: list[str], log: Path, env: dict[str, str] | None = None, interval: float = 0.1
) -> Measured:
    """Run `command` to its end with stdout and stderr in `log`; measure it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    peak, peak_at, largest = 0, time.time(), 0
    done = threading.Event()
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)

        def sample() -> None:
            nonlocal peak, peak_at, largest
            while not done.is_set():
                rss, high_water = _tree_rss(process.pid)
                largest = max(largest, high_water)
                if rss > peak:
                    peak, peak_at = rss, time.time()
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            _, status, _ = os.wait4(process.pid, 0)
        except BaseException:
            process.kill()
            raise
        finally:
            seconds = time.perf_counter() - started
            done.set()
            sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        seconds=seconds,
        peak_rss=max(peak, largest),
        max_process_rss=largest,
        returncode=process.returncode,
        peak_at=peak_at,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )


def add_run_steps(measured: Measured, dagster_home: Path, since: float) -> str | None:
    """Fill in the step times of the latest run in `dagster_home` created after `since` (an
    epoch time) from its event log; return its run id, or None when the stage started no run
    (`trustwh run` with nothing to do). A step's time is STEP_START to its STEP_SUCCESS (or
    STEP_FAILURE)."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.STEP_SKIPPED,
    }
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        records = instance.get_run_records(limit=1)
        if not records or records[0].create_timestamp.timestamp() < since:
            return None
        run_id = records[0].dagster_run.run_id
        events = instance.all_logs(run_id, of_type=kinds)
    ends = (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
    started: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    run_start = run_end = None
    for event in events:
        kind = event.dagster_event.event_type if event.dagster_event else None
        label = STEP_LABELS.get(event.step_key or "", event.step_key or "")
        if kind == dg.DagsterEventType.RUN_START:
            run_start = event.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = event.timestamp
        elif kind == dg.DagsterEventType.STEP_START:
            started[label] = event.timestamp
        elif kind in ends and label in started:
            begun = started.pop(label)
            spans.append((label, begun, event.timestamp))
            measured.steps[label] = measured.steps.get(label, 0.0) + event.timestamp - begun
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            measured.skipped.append(label)
            measured.steps.setdefault(label, 0.0)
    if run_start is not None and run_end is not None:
        measured.run_seconds = run_end - run_start
    during = [label for label, begun, ended in spans if begun <= measured.peak_at <= ended]
    measured.peak_during = during[0] if during else "outside the run"
    return run_id


def add_dbt_nodes(measured: Measured, log_dir: Path) -> None:
    """Node times of the newest dbt log of a home (`trustwh run` keeps dbt's output there)."""
    logs = sorted(log_dir.glob("run-*.log"), key=lambda path: path.stat().st_mtime)
    if not logs:
        return
    nodes: dict[str, float] = {}
    for line in logs[-1].read_text(errors="replace").splitlines():
        match = DBT_NODE.search(ANSI.sub("", line))
        if not match:
            continue
        seconds = float(match["seconds"])
        nodes[match["name"]] = seconds
        if match["kind"].startswith("OK"):
            measured.dbt_models += seconds
        else:
            measured.dbt_tests += seconds
    slowest = sorted(nodes.items(), key=lambda item: -item[1])[:8]
    measured.dbt_slowest = dict(slowest)
