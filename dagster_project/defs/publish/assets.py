"""The publish step: the serving database BI tools read."""

from pathlib import Path

import dagster as dg

from ...errors import noting_interrupts
from ..dbt.assets import dbt_models
from ..dbt.project import dbt_project
from ..ingest.assets import LEDGER_KEY, QUARANTINE_KEY
from ..resources import WarehouseResource
from .serving import PublishError, project_tables, publish

SERVING_KEY = dg.AssetKey(["serving", "database"])
PUBLISHED_DEPS = [key for key in dbt_models.keys if key.path[0] in ("marts", "quality")] + [
    LEDGER_KEY,
    QUARANTINE_KEY,
]


@dg.asset(key=SERVING_KEY, deps=PUBLISHED_DEPS, group_name="publish", kinds={"duckdb"})
def serving_database(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """`serving.duckdb`: marts and quality reports, swapped in whole after a successful build."""
    settings = warehouse.settings()
    models = project_tables(Path(dbt_project.manifest_path))
    # Run alone, or after the ingest without the dbt models (a selection in the Dagster UI),
    # it publishes nothing: the marts are not built from the loads there are.
    built = settings.built_state_path
    built_from = built.read_text() if built.is_file() else None
    try:
        with noting_interrupts():
            published = publish(settings.warehouse_path, settings.serving_path, models, built_from)
    except PublishError as error:
        raise dg.Failure(str(error)) from error
    mart_rows = published.mart_rows
    context.log.info(f"published {len(mart_rows)} marts to {settings.serving_path}")
    if published.left_out:
        context.log.warning(
            f"not published, as no dbt model builds them any more (removed or renamed): "
            f"{', '.join(published.left_out)}. They stay in the working database until "
            "dropped there."
        )
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(settings.serving_path)),
            "marts": len(mart_rows),
            **{f"rows_{name}": count for name, count in mart_rows.items()},
        }
    )
