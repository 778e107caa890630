"""Which runs are building the home: the home's run lock says whether one holds it now, and
Dagster's run records which are starting.

A run whose process died (killed, out of memory, the machine restarted) stays "started" in
Dagster's records: nothing else ends it. Left so, it would hold every later sensor tick and
every queued run back for good, and the Dagster UI would show it running. Such a run is
told by the lock: a live run takes it within seconds of starting and keeps it to its end.
"""

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from ..home import run_lock_shared

JOB_NAME = "trustwh"
DBT_STEP = "dbt_models"
# While a run is in one of these, it may hold the working database or be about to open it.
BUSY_STATUSES = [
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
# A run takes the lock as its resources start, seconds after it was launched or started. One
# that has had neither the lock nor a change of status for this long is not running.
START_GRACE = timedelta(minutes=5)
GONE = (
    "its process ended before the run did (killed, or the machine stopped): it held no run "
    "lock of the home {:.0f} minutes after it {}. Run again to build what it did not."
)
# How a run that ends dead runs says so, in its log or a sensor's.
DIED = "run {} had died without ending: marked failed"
SINCE = {
    dg.DagsterRunStatus.STARTING: "was launched",
    dg.DagsterRunStatus.STARTED: "started",
    dg.DagsterRunStatus.CANCELING: "was asked to stop",
}


def run_in_progress(
    instance: dg.DagsterInstance, home: Path, log: logging.Logger | None = None
) -> bool:
    """Whether a run builds the home now, or is starting to."""
    with run_lock_shared(home) as busy:
        return busy is not None or run_starting(instance, log)


def run_starting(instance: dg.DagsterInstance, log: logging.Logger | None = None) -> bool:
    """With the home's run lock found free: whether Dagster records a run that is on its way
    to it. Runs whose process is gone are ended on the way (as failed, each said in `log`,
    a sensor's), so one killed mid-build does not count."""
    for run_id in end_dead_runs(instance):
        if log is not None:
            log.warning(DIED.format(run_id))
    return bool(instance.get_runs(dg.RunsFilter(statuses=BUSY_STATUSES), limit=1))


def end_dead_runs(instance: dg.DagsterInstance, *, holding: str | None = None) -> list[str]:
    """Mark failed, with the reason, the runs Dagster records as in progress whose process is
    gone; return their ids. Call it holding the home's run lock (`holding` is the caller's
    run) or having found it free: every other run is then without it, and one past
    `START_GRACE` since its last change of status is not on its way to it either."""
    now = datetime.now(UTC)
    ended = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=BUSY_STATUSES)):
        run, idle = record.dagster_run, now - record.update_timestamp.astimezone(UTC)
        if run.run_id == holding or idle < START_GRACE:
            continue
        instance.report_run_failed(run, GONE.format(idle.total_seconds() / 60, SINCE[run.status]))
        ended.append(run.run_id)
    return ended


def builds_dbt(run: dg.DagsterRun) -> bool:
    """Whether this run of the job will run its dbt step."""
    steps = run.step_keys_to_execute
    return run.job_name == JOB_NAME and (steps is None or DBT_STEP in steps)
