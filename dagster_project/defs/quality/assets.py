"""The governance report as a Dagster asset: rewritten after each publish of serving.duckdb."""

import dagster as dg

from ..publish.assets import SERVING_KEY
from ..resources import WarehouseResource
from .report import build_report

REPORT_KEY = dg.AssetKey(["quality", "report"])


@dg.asset(key=REPORT_KEY, deps=[SERVING_KEY], group_name="publish", kinds={"html"})
def quality_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """`HOME/quality/index.html`: blocked loads, every load's status and checks, quarantined
    rows (masked), quality trends and cohort retention, read from serving.duckdb only."""
    settings = warehouse.settings()
    if not settings.serving_path.is_file():
        raise dg.Failure(
            f"nothing is published in {settings.home} yet: run the whole job, then the report"
        )
    page = build_report(settings)
    context.log.info(f"governance report written to {page}")
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(page))})
