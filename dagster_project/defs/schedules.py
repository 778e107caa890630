"""When the job runs: on new landed files (sensor) and once a day (schedule)."""

import hashlib

import dagster as dg

from .ingest.contract import ENTITIES
from .resources import WarehouseResource
from .runs import run_in_progress

trustwh_job = dg.define_asset_job(
    "trustwh",
    selection=dg.AssetSelection.all(),
    description="Ingest new exports, gate them, build the dbt models and publish.",
)

# One run at a time builds the home (its run lock): a tick during a run starts none.
BUSY = dg.SkipReason("a run is in progress; it builds what has landed")


@dg.schedule(
    name="daily_build",
    job=trustwh_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Asia/Shanghai",
)
def daily_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    """Once a day, whatever the sensor saw, unless a run is building the home then."""
    busy = run_in_progress(context.instance, warehouse.settings().home)
    return BUSY if busy else dg.RunRequest()


@dg.sensor(job=trustwh_job, minimum_interval_seconds=60)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Start a run when the landing folder's files change (new, corrected or removed files).
    While a run is in progress the cursor stays, so files landed meanwhile start the next."""
    settings = warehouse.settings()
    if run_in_progress(context.instance, settings.home):
        return BUSY
    landing = settings.landing
    listing = sorted(
        f"{path.relative_to(landing)}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
        for entity in ENTITIES
        if (landing / entity).is_dir()
        for path in (landing / entity).iterdir()
        if path.is_file()
    )
    fingerprint = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    if not listing or fingerprint == context.cursor:
        return dg.SkipReason(f"no new files in {landing}")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)
