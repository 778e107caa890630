"""dbt models, seeds and tests as Dagster assets and checks: one graph with the ingest step."""

import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from pydantic import Field

from ...home import make_readable
from ...settings import ENV_PII_KEY, Settings
from ..publish.serving import (
    NOTHING_LOADED,
    build_basis,
    build_is_current,
    build_state,
    has_ledger,
    project_state,
    same_basis,
)
from ..resources import WarehouseResource
from .project import dbt_project
from .warm import build_environment


class TrustTranslator(DagsterDbtTranslator):
    """Sources keep their `source/table` key (raw/orders, quality/load_ledger), which are the
    ingest assets' keys; models and seeds are keyed by the relation they build, schema and
    table, so marts read `marts/<name>` and `quality_orphan_refunds` `quality/orphan_refunds`."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        table = dbt_resource_props.get("alias") or dbt_resource_props["name"]
        return dg.AssetKey([dbt_resource_props["schema"], table])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return dbt_resource_props["schema"]


translator = TrustTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    full_refresh: bool = Field(
        default=False,
        description="Rebuild every model from the raw layer (dbt build --full-refresh), even "
        "when nothing changed: the incremental models drop what earlier builds kept.",
    )


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=translator)
def dbt_models(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    warehouse: WarehouseResource,
    config: DbtBuildConfig,
):
    """Seeds, staging, intermediate and marts, built and tested by `dbt build`. Unit tests
    prove the SQL, not the data: they run in `make test`, not in every build.

    When neither the published loads nor the dbt project changed since the last publish,
    nothing is built (and so nothing is published): an idle run costs seconds. With
    `full_refresh` (`trustwh run --full-refresh`, or the run's config in the Dagster UI),
    every model is rebuilt whole. A selection in the Dagster UI (some models, or checks
    only) runs what was selected, and is not what a publish may be made from."""
    settings = warehouse.settings()
    # Incremental models hold what earlier builds computed: when the project or the key of
    # the pseudonyms changed since the last successful build, everything is rebuilt. So is it
    # after a build that did not finish: the models incremental over a build's changes (the
    # buyer months, three marts) read what the build before them changed, and would miss
    # what an unfinished build changed.
    # The project as the build begins: what its basis records, whatever is edited meanwhile.
    basis_path, key, project = settings.build_basis_path, settings.pii_key(), project_state()
    whole = not context.is_subset
    models = whole or bool(context.selected_asset_keys)  # not the checks alone
    with warehouse.connect() as con:
        if not has_ledger(con):
            raise dg.Failure(NOTHING_LOADED)
        state = build_state(con, project)
        unchanged = settings.serving_path.exists() and build_is_current(
            con, state, basis_path, project, key
        )
    if whole and unchanged and not config.full_refresh:
        context.log.info("no new published loads and no model changes: nothing to build")
        settings.built_state_path.write_text(state)
        return
    args = ["build", "--exclude-resource-type", "unit_test"]
    if models:
        # Written again when a whole build finishes: a publish is made only from the marts
        # one built from the loads there are, and the next build after an unfinished one, or
        # after some models only (which recorded their changes for models that did not run),
        # is a full refresh.
        settings.built_state_path.unlink(missing_ok=True)
        if config.full_refresh:
            context.log.info("a full refresh was asked for: every model is rebuilt")
            args.append("--full-refresh")
        elif not same_basis(basis_path, project, key):
            context.log.info(
                "no finished build with this dbt project and pseudonym key: a full refresh"
            )
            args.append("--full-refresh")
        basis_path.unlink(missing_ok=True)
    # The key of the pseudonyms is given to dbt for this invocation only, with the working
    # database of this run's home; the run's warm dbt, when it has one, takes the build.
    with _environment(build_environment(settings) | warehouse.warm_dbt_environment()):
        build = dbt.cli(args, context=context, target_path=settings.dbt_target_path)
        yield from build.stream()
    if not whole:
        context.log.info(
            "a selection of the dbt models or their checks ran: nothing is published from it"
            + ("; the next whole build is a full refresh" if models else "")
        )
        return
    basis_path.write_text(build_basis(project, key))
    settings.built_state_path.write_text(state)
    docs_state = settings.docs_path / DOCS_STATE
    if docs_state.is_file() and docs_state.read_text() == project:
        context.log.info("dbt project unchanged since the docs were generated: docs kept")
    else:
        if generate_docs(dbt, settings):
            docs_state.write_text(project)
        else:
            context.log.warning(f"dbt docs generate failed; see {settings.docs_path / 'dbt.log'}")
        make_readable(settings.docs_path)


# The docs describe the project (lineage, descriptions, columns and types), not the data: they
# are generated again only when the project changed, a second dbt process saved on most runs.
DOCS_STATE = ".project-state"
# dbt's saved parse, which a later dbt command reuses when the project and profile are the same.
PARTIAL_PARSE = "partial_parse.msgpack"
# What the docs' compiled SQL shows in place of the key: BI users read the docs.
DOCS_PII_KEY = "TRUSTWH_PII_KEY is not shown in the docs"


def generate_docs(dbt: DbtCliResource, settings: Settings) -> bool:
    """`dbt docs generate` into HOME/docs, the site `trustwh docs` serves (lineage, every model
    and column described, the catalog of the working database). Run after a successful build.
    It reuses the build's parse of the project: dbt cannot reuse a parse made for another
    profile (the project's own, by `dbt parse`, names no home), and parsing again took 2 s.
    That parse records the key of the pseudonyms, so it is removed from the docs afterwards."""
    parsed, reused = settings.dbt_target_path / PARTIAL_PARSE, settings.docs_path / PARTIAL_PARSE
    if parsed.is_file():
        settings.docs_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(parsed, reused)
    try:
        with _environment(settings.dbt_env() | {ENV_PII_KEY: DOCS_PII_KEY}):
            docs = dbt.cli(
                ["docs", "generate", "--static"],
                manifest=dbt_project.manifest_path,
                target_path=settings.docs_path,
                raise_on_error=False,
            )
            docs.wait()
    finally:
        reused.unlink(missing_ok=True)
    return docs.is_successful()


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the dbt processes started inside, then restore them."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
