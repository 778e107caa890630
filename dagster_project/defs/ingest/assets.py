"""The ingest step: landed export files → raw tables, load ledger and quarantine."""

from collections import Counter
from datetime import datetime

import dagster as dg
import duckdb

from ...errors import FILE_LINE, interrupted, noting_interrupts_of
from ..quality.expectations import (
    CheckOutcome,
    DataDocs,
    asset_check_results,
    asset_check_specs,
    gx_dir,
    import_gx_in_background,
    unvalidated_loads,
    validate_loads,
)
from ..quality.gate import BLOCKED, PUBLISHED
from ..resources import WarehouseResource
from .contract import ENTITIES, Entity
from .loader import LedgerEntry, ingest_entity, record_strays
from .tables import create_tables

LEDGER_KEY = dg.AssetKey(["quality", "load_ledger"])
QUARANTINE_KEY = dg.AssetKey(["quality", "quarantine"])


def raw_key(entity: Entity) -> dg.AssetKey:
    return dg.AssetKey(["raw", entity.name])


RAW_SPECS = [
    dg.AssetSpec(
        raw_key(entity),
        description=f"Parsed rows of the {entity.name} exports ({entity.zh}), every version, "
        "with lineage. " + entity.description,
        group_name="ingest",
        kinds={"duckdb"},
    )
    for entity in ENTITIES.values()
]
QUALITY_SPECS = [
    dg.AssetSpec(
        LEDGER_KEY,
        description="One row per landed file: published, blocked, rejected or duplicate.",
        group_name="ingest",
        kinds={"duckdb"},
    ),
    dg.AssetSpec(
        QUARANTINE_KEY,
        description="One row per data row set aside, with the file, row number and reason.",
        group_name="ingest",
        kinds={"duckdb"},
    ),
]
ACCOUNTING_CHECKS = [
    dg.AssetCheckSpec(
        "rows_accounted",
        asset=raw_key(entity),
        blocking=True,
        description="Every data row of every load is in raw or in quarantine, as the ledger says.",
    )
    for entity in ENTITIES.values()
]
# The gate's first rule, decided while loading: a load with too many rows set aside is blocked.
QUARANTINE_SHARE_CHECKS = [
    dg.AssetCheckSpec(
        "quarantine_share",
        asset=raw_key(entity),
        description="The share of a load's data rows quarantined is at most the threshold "
        "(TRUSTWH_QUARANTINE_THRESHOLD, 5% by default). A load above it is held back on its own "
        "(ledger status 'blocked', listed in this check's metadata) while the other loads "
        "publish: the check then fails with severity WARN, and never stops the run.",
    )
    for entity in ENTITIES.values()
]
# The quality gate: one check per expectation of data_tests/ on the raw asset it guards.
GATE_CHECKS = [
    spec for entity in ENTITIES.values() for spec in asset_check_specs(entity, raw_key(entity))
]


@dg.multi_asset(
    name="ingest_exports",
    specs=RAW_SPECS + QUALITY_SPECS,
    check_specs=ACCOUNTING_CHECKS + QUARANTINE_SHARE_CHECKS + GATE_CHECKS,
)
def ingest_exports(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Load every new file of the landing folder: parse, quarantine bad rows, gate each load."""
    yield from noting_interrupts_of(_ingest(context, warehouse))


def _ingest(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    settings = warehouse.settings()
    import_gx_in_background()
    loaded_at = datetime.now().replace(microsecond=0)
    all_entries: list[LedgerEntry] = []
    outcomes: dict[str, list[CheckOutcome]] = {}
    docs = DataDocs(gx_dir(settings.home))
    with warehouse.connect() as con:
        create_tables(con)
        for entity in ENTITIES.values():
            entries = ingest_entity(
                con,
                entity,
                settings.landing / entity.name,
                settings.temp_dir,
                loaded_at,
                settings.quarantine_threshold,
            )
            # The gate validates this run's readable loads only and blocks those that fail.
            outcomes[entity.name] = validate_loads(
                con,
                entity,
                [entry for entry in entries if entry.status in (PUBLISHED, BLOCKED)]
                + unvalidated_loads(con, entity),
                docs=docs,
            )
            all_entries.extend(entries)
            for entry in entries:
                log = context.log.info if entry.status == "published" else context.log.warning
                log(
                    f"{entity.name}/{entry.file_name}: {entry.status}, {entry.rows_loaded} rows "
                    f"loaded, {entry.rows_quarantined} quarantined"
                    + (f" — {entry.reason}" if entry.reason else ""),
                    extra={FILE_LINE: True},
                )
            yield dg.MaterializeResult(asset_key=raw_key(entity), metadata=_summary(entries))
        for entry in record_strays(
            con, settings.landing, list(ENTITIES), loaded_at, skip=settings.home
        ):
            context.log.warning(
                f"{entry.file_name}: rejected — {entry.reason}", extra={FILE_LINE: True}
            )
            all_entries.append(entry)
        try:
            docs.build()
        except Exception as error:  # the verdicts are recorded; only the GX pages lag behind
            if interrupted(error):
                raise
            context.log.warning(f"GX Data Docs not built: {type(error).__name__}: {error}")
        yield dg.MaterializeResult(asset_key=LEDGER_KEY, metadata=_summary(all_entries))
        yield dg.MaterializeResult(
            asset_key=QUARANTINE_KEY,
            metadata={"new_rows": sum(entry.rows_quarantined for entry in all_entries)},
        )
        for entity in ENTITIES.values():
            yield rows_accounted(con, entity)
            yield quarantine_share(
                entity,
                [entry for entry in all_entries if entry.entity == entity.name],
                settings.quarantine_threshold,
            )
            yield from asset_check_results(entity, raw_key(entity), outcomes[entity.name])


def _summary(entries: list[LedgerEntry]) -> dict[str, int]:
    statuses = Counter(entry.status for entry in entries)
    return {
        "new_files": len(entries),
        **{f"files_{status}": count for status, count in sorted(statuses.items())},
        "rows_loaded": sum(entry.rows_loaded for entry in entries),
        "rows_quarantined": sum(entry.rows_quarantined for entry in entries),
    }


def quarantine_share(
    entity: Entity, entries: list[LedgerEntry], threshold: float
) -> dg.AssetCheckResult:
    """This run's readable loads of the entity against the quarantine threshold."""
    shares = {
        entry.load_id: entry.rows_quarantined / entry.rows_read
        for entry in entries
        if entry.rows_read and entry.status in (PUBLISHED, BLOCKED)
    }
    over = sorted(load_id for load_id, share in shares.items() if share > threshold)
    return dg.AssetCheckResult(
        asset_key=raw_key(entity),
        check_name="quarantine_share",
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"blocked {len(over)} load(s) above {threshold:.0%} quarantined; the others publish"
            if over
            else f"{len(shares)} new load(s) within {threshold:.0%} quarantined"
        ),
        metadata={
            "new_loads": len(shares),
            "threshold": threshold,
            "largest_share": round(max(shares.values(), default=0.0), 4),
            "blocked_loads": over,
        },
    )


def rows_accounted(con: duckdb.DuckDBPyConnection, entity: Entity) -> dg.AssetCheckResult:
    """Loads whose rows in raw and quarantine do not match what the ledger recorded."""
    mismatches = con.execute(
        f"""
        with ledger as (
            select load_id, rows_read, rows_loaded, rows_quarantined
            from quality.load_ledger where entity = $entity
        ),
        loaded as (
            select _load_id as load_id, count(*) as rows_in_raw
            from raw.{entity.name} group by _load_id
        ),
        quarantined as (
            select load_id, count(*) as rows_in_quarantine
            from quality.quarantine where entity = $entity group by load_id
        )
        select
            coalesce(ledger.load_id, loaded.load_id, quarantined.load_id) as load_id,
            ledger.rows_loaded, coalesce(loaded.rows_in_raw, 0) as rows_in_raw,
            ledger.rows_quarantined, coalesce(quarantined.rows_in_quarantine, 0)
                as rows_in_quarantine
        from ledger
        full join loaded on ledger.load_id = loaded.load_id
        full join quarantined on coalesce(ledger.load_id, loaded.load_id) = quarantined.load_id
        where ledger.load_id is null
            or ledger.rows_read != ledger.rows_loaded + ledger.rows_quarantined
            or ledger.rows_loaded != coalesce(loaded.rows_in_raw, 0)
            or ledger.rows_quarantined != coalesce(quarantined.rows_in_quarantine, 0)
        order by 1
        limit 20
        """,
        {"entity": entity.name},
    ).fetchall()
    return dg.AssetCheckResult(
        asset_key=raw_key(entity),
        check_name="rows_accounted",
        passed=not mismatches,
        severity=dg.AssetCheckSeverity.ERROR,
        description=None if not mismatches else "loads whose rows do not match the ledger",
        metadata={"mismatched_loads": [row[0] for row in mismatches]},
    )
