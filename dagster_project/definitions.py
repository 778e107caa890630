"""The one Definitions object: it only assembles what defs/ provides."""

import dagster as dg

from .defs.dbt.project import ensure_manifest

# The dbt assets are read from the manifest: parsed here when the project changed since, so
# the Dagster UI (`make dev`, "Reload definitions") and `trustwh run` load it as on disk.
ensure_manifest()

from .defs.dbt.assets import dbt_models  # noqa: E402
from .defs.dbt.resource import dbt_resource  # noqa: E402
from .defs.ingest.assets import ingest_exports  # noqa: E402
from .defs.publish.assets import serving_database  # noqa: E402
from .defs.quality.alerts import blocked_load_alert, run_failure_alert  # noqa: E402
from .defs.quality.assets import quality_report  # noqa: E402
from .defs.resources import WarehouseResource  # noqa: E402
from .defs.schedules import daily_schedule, landing_sensor, trustwh_job  # noqa: E402

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
