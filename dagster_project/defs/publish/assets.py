"""The publish step: the serving database BI tools read."""

from pathlib import Path

import dagster as dg

from ..dbt.assets import dbt_models
from ..dbt.project import dbt_project
from ..ingest.assets import LEDGER_KEY, QUARANTINE_KEY
from ..resources import WarehouseResource
from .serving import build_state, project_tables, publish

SERVING_KEY = dg.AssetKey(["serving", "database"])
PUBLISHED_DEPS = [key for key in dbt_models.keys if key.path[0] in ("marts", "quality")] + [
    LEDGER_KEY,
    QUARANTINE_KEY,
]


@dg.asset(key=SERVING_KEY, deps=PUBLISHED_DEPS, group_name="publish", kinds={"duckdb"})
def serving_database(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """`serving.duckdb`: marts and quality reports, swapped in whole after a successful build."""
    settings = warehouse.settings()
    # Run alone, or after the ingest without the dbt models (a selection in the Dagster UI),
    # it would publish a ledger that counts loads whose rows the marts do not hold.
    built = settings.built_state_path
    with warehouse.connect() as con:
        current = build_state(con)
    if not built.is_file() or built.read_text() != current:
        raise dg.Failure(
            "the marts are not built from the loads and dbt project there are now: nothing "
            "published. Materialize the dbt models first, or run the whole job."
        )
    models = project_tables(Path(dbt_project.manifest_path))
    published = publish(settings.warehouse_path, settings.serving_path, models)
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
