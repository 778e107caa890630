"""When the job runs: on new landed files (sensor) and once a day (schedule)."""

import contextlib
import hashlib
import time

import dagster as dg

from .ingest.contract import ENTITIES
from .ingest.files import landed_files, stray_files
from .resources import WarehouseResource
from .runs import JOB_NAME, run_in_progress

trustwh_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Ingest new exports, gate them, build the dbt models and publish.",
)

# One run at a time builds the home (its run lock): a sensor tick during a run starts none.
BUSY = dg.SkipReason("a run is in progress; it builds what has landed")
# A landed file is loaded once it has not changed for this long, so one still being copied
# in waits; a copy stalled longer is loaded as it stands, and the whole file, when it is
# there, is a corrected file (a new load).
SETTLE_SECONDS = 30


# Once a day, whatever the sensor saw. A run in progress then does not skip it: the run waits
# in the home's run queue (dagster_project/dagster.yaml) and builds what landed meanwhile.
daily_schedule = dg.ScheduleDefinition(
    name="daily_build",
    job=trustwh_job,
    cron_schedule="0 6 * * *",
    execution_timezone="Asia/Shanghai",
    description="The whole job at 06:00 China time, whatever landed (queued behind a run in "
    "progress).",
)


@dg.sensor(
    job=trustwh_job,
    minimum_interval_seconds=60,
    description="A run once newly landed files (in the export folders or beside them) have "
    f"not changed for {SETTLE_SECONDS} s; none while a run is in progress.",
)
def landing_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Start a run when the landing folder's files change (new, corrected or removed files)
    and none has changed for `SETTLE_SECONDS`, so a file still being copied in is not loaded
    half. While a run is in progress, or a file settles, the cursor stays: the next tick
    starts the run."""
    settings = warehouse.settings()
    if run_in_progress(context.instance, settings.home, context.log):
        return BUSY
    landing = settings.landing
    # What a run reads or records: the export folders' files, and the files outside them
    # (`Orders/`, the landing's top), which a run records as rejected with where they belong.
    # Hidden files are passed over by both.
    # Named as the ledger names them (a stray's name is text even when its bytes are not).
    paths = {
        f"{entity}/{path.name}": path
        for entity in ENTITIES
        for path in landed_files(landing / entity)
    }
    paths |= {
        stray.name: stray.path for stray in stray_files(landing, list(ENTITIES), skip=settings.home)
    }
    files = {}
    for name, path in paths.items():
        with contextlib.suppress(FileNotFoundError):  # moved away meanwhile: not there
            files[name] = path.stat()
    listing = sorted(f"{name}:{stat.st_size}:{stat.st_mtime_ns}" for name, stat in files.items())
    fingerprint = hashlib.sha256("\n".join(listing).encode()).hexdigest()
    if not listing or fingerprint == context.cursor:
        return dg.SkipReason(f"no new files in {landing}")
    # The change time, which a copy that keeps the source's times (`cp -p`) cannot set back.
    name, stat = max(files.items(), key=lambda item: item[1].st_ctime)
    if (age := time.time() - stat.st_ctime) < SETTLE_SECONDS:
        return dg.SkipReason(f"{name} changed {age:.0f} s ago; waiting until it settles")
    context.update_cursor(fingerprint)
    return dg.RunRequest(run_key=fingerprint)
