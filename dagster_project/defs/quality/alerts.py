"""Alerts: a failed run or a newly blocked load becomes a line in `HOME/logs/alerts.log` and,
when `TRUSTWH_ALERT_WEBHOOK` is set, a JSON POST to that URL.

The alert itself (`make_alert`, `send_alert`) is plain Python; the sensors only decide when.
Posting is best effort: a webhook that is down is logged, never raised, so it cannot fail a
sensor tick or hide the log line.
"""

import json
import logging
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from ...errors import RUN_START, error_line
from ...home import run_lock_shared
from ...settings import Settings
from ..resources import WarehouseResource
from ..runs import run_starting

ALERT_LOG = "alerts.log"
WEBHOOK_TIMEOUT_SECONDS = 5
RUN_FAILURE = "run_failure"
LOAD_BLOCKED = "load_blocked"
log = logging.getLogger(__name__)


def make_alert(kind: str, reason: str, *, at: datetime | None = None, **ids: Any) -> dict:
    """One alert: time, kind, the run or load it is about (and any context), reason."""
    moment = (at or datetime.now().astimezone()).replace(microsecond=0)
    return {"time": moment.isoformat(), "kind": kind, **ids, "reason": reason}


def send_alert(
    alert: dict,
    log_path: Path,
    webhook: str | None = None,
    timeout: float = WEBHOOK_TIMEOUT_SECONDS,
) -> bool:
    """Append the alert as a JSON line to `log_path`; POST it to `webhook` if one is set.
    Returns whether the webhook took it (True when there is none)."""
    line = json.dumps(alert, ensure_ascii=False, default=str)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a", encoding="utf-8") as file:
        file.write(line + "\n")
    if not webhook:
        return True
    try:
        if not webhook.lower().startswith(("http://", "https://")):
            raise ValueError(f"{webhook!r} is not an http(s) URL")
        request = urllib.request.Request(
            webhook,
            data=line.encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return True
    except Exception as error:  # any failure to post is reported, never raised
        log.warning("could not post alert %s to the webhook: %s", alert.get("kind"), error)
        return False


def alert(settings: Settings, kind: str, reason: str, **ids: Any) -> dict:
    """Make and send an alert with the settings' log folder and webhook."""
    made = make_alert(kind, reason, **ids)
    send_alert(made, settings.log_dir / ALERT_LOG, settings.alert_webhook)
    return made


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts each failed run (and each run whose process died) to the log and "
    "the webhook.",
    # Runs of `trustwh run` (in-process, no code location) too: the instance is the home's.
    monitor_all_code_locations=True,
)
def run_failure_alert(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    """A failed run of the home, started from the Dagster UI, a sensor, the schedule or
    `trustwh run`, or ended because its process had died (defs/runs.py)."""
    run = context.dagster_run
    alert(
        warehouse.settings(),
        RUN_FAILURE,
        _failure_reason(context),
        run_id=run.run_id,
        job=_job(run),
    )


# The job Dagster runs for a selection of assets or checks launched in its UI: a name that
# says nothing to whoever reads the alert.
IMPLICIT_ASSET_JOB = "__ASSET_JOB"
NAMED_ASSETS = 5


def _job(run: dg.DagsterRun) -> str:
    """The run's job; a selection launched in the Dagster UI, by what it selected."""
    if not run.job_name.startswith(IMPLICIT_ASSET_JOB):
        return run.job_name
    keys = sorted(key.to_user_string() for key in run.asset_selection or ())
    if not keys:
        checks = len(run.asset_check_selection or ())
        return f"a selection of {checks} asset check(s)"
    named = ", ".join(keys[:NAMED_ASSETS])
    more = f" and {len(keys) - NAMED_ASSETS} more" if len(keys) > NAMED_ASSETS else ""
    return f"a selection of assets: {named}{more}"


def _failure_reason(context: dg.RunFailureSensorContext) -> str:
    """What failed first, a step or the run's start (its resources), and why; else the run's
    own message ("Execution of run … failed")."""
    failures = context.instance.all_logs(
        context.dagster_run.run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RESOURCE_INIT_FAILURE},
    )
    for record in failures:
        event = record.dagster_event
        if event is not None and event.event_specific_data.error is not None:
            where = event.step_key or RUN_START
            return f"{where}: {error_line(event.event_specific_data.error)}"
    message = (context.failure_event.message or "").strip()
    return message.splitlines()[0] if message else "the run failed"


def _blocked_loads(warehouse: Path) -> list[tuple[str, str, str, str]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(
            "select load_id, entity, file_name, coalesce(reason, '') "
            "from quality.load_ledger where status = 'blocked' order by loaded_at, load_id"
        ).fetchall()
    except duckdb.CatalogException:
        return []  # no ledger yet: nothing was ever loaded
    finally:
        con.close()


@dg.sensor(
    name="blocked_load_alert",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Alerts each load newly blocked by the quality gate to the log and the webhook.",
)
def blocked_load_alert(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Loads blocked since the last tick. The cursor holds the load ids blocked then, so a load
    released and blocked again alerts again. While a run is going, or another process holds
    the working database, the tick is skipped and the next one catches up. The ledger is read
    holding the home's run lock shared: a DuckDB file open read-only here would keep a
    starting run from opening it read-write, so a run starting meanwhile waits for the read."""
    settings = warehouse.settings()
    with run_lock_shared(settings.home) as busy:
        if busy is not None or run_starting(context.instance, context.log):
            return dg.SkipReason("a run is in progress; checking after it")
        if not settings.warehouse_path.exists():
            return dg.SkipReason(f"no working database at {settings.warehouse_path} yet")
        try:
            rows = _blocked_loads(settings.warehouse_path)
        except duckdb.Error as error:  # held by another process (`trustwh release`, a shell)
            return dg.SkipReason(f"working database busy: {str(error).splitlines()[0]}")
    seen = set(json.loads(context.cursor)) if context.cursor else set()
    new = [row for row in rows if row[0] not in seen]
    for load_id, entity, file_name, reason in new:
        alert(settings, LOAD_BLOCKED, reason, load_id=load_id, entity=entity, file_name=file_name)
    context.update_cursor(json.dumps(sorted(row[0] for row in rows)))
    if not new:
        return dg.SkipReason("no newly blocked loads")
    return dg.SkipReason(f"alerted {len(new)} newly blocked loads")
