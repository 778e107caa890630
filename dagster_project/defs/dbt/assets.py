"""dbt models, seeds and tests as Dagster assets and checks: one graph with the ingest step."""

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)

from ..publish.serving import build_state, last_published_state
from ..resources import WarehouseResource
from .project import dbt_project


class TrustTranslator(DagsterDbtTranslator):
    """Sources keep their `source/table` key (raw/orders, quality/load_ledger), which are the
    ingest assets' keys; models and seeds are keyed by schema, so marts read `marts/<name>`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]


translator = TrustTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=translator)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
):
    """Seeds, staging, intermediate and marts, built and tested by `dbt build`. Unit tests
    prove the SQL, not the data: they run in `make test`, not in every build.

    When neither the published loads nor the dbt project changed since the last publish,
    nothing is built (and so nothing is published): an idle run costs seconds."""
    settings = warehouse.settings()
    if settings.serving_path.exists():
        with warehouse.connect() as con:
            unchanged = last_published_state(con) == build_state(con)
        if unchanged:
            context.log.info("no new published loads and no model changes: nothing to build")
            return
    yield from dbt.cli(["build", "--exclude-resource-type", "unit_test"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    # The dbt of this environment, whether or not its bin folder is on PATH.
    executable = Path(sys.executable).with_name("dbt")
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(dbt_project.profiles_dir),
        dbt_executable=str(executable) if executable.exists() else "dbt",
    )
