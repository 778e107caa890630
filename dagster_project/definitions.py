"""The one Definitions object: it only assembles what defs/ provides."""

import dagster as dg

from .defs.dbt.assets import dbt_models
from .defs.dbt.resource import dbt_resource
from .defs.ingest.assets import ingest_exports
from .defs.publish.assets import serving_database
from .defs.quality.alerts import blocked_load_alert, run_failure_alert
from .defs.quality.assets import quality_report
from .defs.resources import WarehouseResource
from .defs.schedules import daily_schedule, landing_sensor, trustwh_job

defs = dg.Definitions(
    assets=[ingest_exports, dbt_models, serving_database, quality_report],
    jobs=[trustwh_job],
    schedules=[daily_schedule],
    sensors=[landing_sensor, run_failure_alert, blocked_load_alert],
    resources={"warehouse": WarehouseResource(), "dbt": dbt_resource()},
    # The steps share one DuckDB file and run one after another: a process per step only
    # adds start-up time.
    executor=dg.in_process_executor,
)
