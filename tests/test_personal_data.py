"""Personal data: receiver phone and address are tagged in dbt, pseudonymised with a keyed hash
in the current orders, and never reach `serving.duckdb` or the docs site BI users read; the key
is never committed, generated locally outside production and required in production."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.dbt.project import ensure_manifest
from dagster_project.defs.ingest.contract import ENTITIES
from dagster_project.defs.resources import WarehouseResource
from dagster_project.home import PUBLISHED, make_readable, open_home
from dagster_project.runner import DOCS_FILES
from dagster_project.sample_data.generate import generate
from dagster_project.settings import ENV_MODE, ENV_PII_KEY, Settings, SettingsError

from .runs import query, trustwh

PERSONAL = {
    (entity.name, column.name)
    for entity in ENTITIES.values()
    for column in entity.columns
    if column.personal
}
# A mainland mobile number standing alone: 11 digits starting 1[3-9], not inside a longer
# alphanumeric run such as a file hash (as tests/test_end_to_end.py; RE2 has no lookaround).
MOBILE = r"(^|[^0-9A-Za-z])1[3-9][0-9]{9}([^0-9A-Za-z]|$)"
DASHBOARDS = {
    "repurchase_dashboard",
    "after_sales_dashboard",
    "governance_dashboard",
    "trust_program_dashboard",
}


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch):
    monkeypatch.delenv(ENV_PII_KEY, raising=False)
    monkeypatch.delenv(ENV_MODE, raising=False)


def _relations(manifest: dict) -> dict[tuple[str, str], dict]:
    """(schema, table) → its columns as dbt documents them, for every model, seed and source."""
    relations = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] in ("model", "seed", "snapshot"):
            relations[(node["schema"], node["alias"])] = node["columns"]
    for source in manifest["sources"].values():
        relations[(source["schema"], source["identifier"])] = source["columns"]
    return relations


def _personal_tag(column: dict):
    return (column.get("config") or {}).get("meta", {}).get("personal") or column.get(
        "meta", {}
    ).get("personal")


def test_personal_columns_are_tagged_and_no_table_outside_the_raw_layer_holds_them():
    manifest = json.loads(ensure_manifest().read_text())
    tagged = {
        (schema, table, name): _personal_tag(column)
        for (schema, table), columns in _relations(manifest).items()
        for name, column in columns.items()
        if _personal_tag(column)
    }
    personal = {key for key, tag in tagged.items() if tag is True}
    # The export contract's personal columns, tagged on the raw source ...
    assert {key[1:] for key in personal if key[0] == "raw"} == PERSONAL
    # ... and on the staging view that passes them to the current orders, which stores nothing.
    assert {key for key in personal if key[0] != "raw"} == {
        ("staging", "stg_orders", column) for _, column in PERSONAL
    }
    stg_orders = next(n for n in manifest["nodes"].values() if n["name"] == "stg_orders")
    assert stg_orders["config"]["materialized"] == "view"
    pseudonymised = {key for key, tag in tagged.items() if tag == "pseudonymised"}
    assert pseudonymised == {
        ("intermediate", "int_orders_current", "receiver_phone_hash"),
        ("intermediate", "int_orders_current", "receiver_address_hash"),
    }


def test_every_dashboard_is_an_exposure_with_an_owner_over_marts():
    manifest = json.loads(ensure_manifest().read_text())
    exposures = {exposure["name"]: exposure for exposure in manifest["exposures"].values()}
    assert set(exposures) >= DASHBOARDS
    for name, exposure in exposures.items():
        assert exposure["owner"].get("name"), name
        assert len(exposure["description"]) > 100, name
        nodes = exposure["depends_on"]["nodes"]
        assert nodes and all(manifest["nodes"][node]["schema"] == "marts" for node in nodes)


def test_outside_production_a_local_key_is_generated_once_and_kept_private(tmp_path):
    settings = Settings.load(home=tmp_path / "home")
    key = settings.pii_key()
    assert len(key) == 64
    assert stat.S_IMODE(settings.pii_key_path.stat().st_mode) == 0o600
    assert Settings.load(home=tmp_path / "home").pii_key() == key
    assert Settings.load(home=tmp_path / "other").pii_key() != key


def test_in_production_the_key_must_come_from_the_environment(tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    monkeypatch.setenv(ENV_MODE, "production")
    with pytest.raises(SettingsError, match=ENV_PII_KEY):
        Settings.load(home=tmp_path / "home").pii_key()
    code, output = trustwh("run", "--landing", landing, "--home", tmp_path / "home")
    assert code == 2, output
    assert ENV_PII_KEY in output and "Traceback" not in output
    assert not (tmp_path / "home" / "warehouse.duckdb").exists()  # stopped before the run
    assert not (tmp_path / "home" / "pii.key").exists()  # and no key invented
    monkeypatch.setenv(ENV_PII_KEY, "short")
    code, output = trustwh("run", "--landing", landing, "--home", tmp_path / "home")
    assert code == 2 and "Traceback" not in output, output
    monkeypatch.setenv(ENV_PII_KEY, "a-production-secret-from-the-vault")
    assert Settings.load(home=tmp_path / "home").pii_key() == "a-production-secret-from-the-vault"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One small dirty landing, one run, with the key generated locally."""
    root = tmp_path_factory.mktemp("personal")
    os.environ.pop(ENV_PII_KEY, None)
    os.environ.pop(ENV_MODE, None)
    generate(root / "landing", scale=0.02, months=3, dirty=True)
    code, output = trustwh("run", "--landing", root / "landing", "--home", root / "home")
    assert code == 0, output
    return root / "home"


@pytest.mark.slow
def test_no_column_of_serving_is_personal_by_tag_or_by_value(built):
    serving = built / "serving.duckdb"
    manifest = json.loads((built / "docs" / "manifest.json").read_text())
    documented = _relations(manifest)
    columns = query(
        serving,
        "select table_schema, table_name, column_name, data_type from information_schema.columns",
    )
    assert {schema for schema, *_ in columns} == {"marts", "quality"}
    personal_names = {column for _, column in PERSONAL}
    for schema, table, column, data_type in columns:
        tag = _personal_tag(documented.get((schema, table), {}).get(column, {}))
        assert not tag, f"{schema}.{table}.{column} is tagged personal: {tag}"
        assert column not in personal_names, f"{schema}.{table}.{column}"
        if data_type in ("VARCHAR", "JSON"):
            [(shaped,)] = query(
                serving,
                f"select count(*) from {schema}.{table} "
                f'where regexp_matches("{column}"::varchar, ?)',
                [MOBILE],
            )
            assert shaped == 0, f"{schema}.{table}.{column} holds {shaped} phone-shaped values"


@pytest.mark.slow
def test_only_raw_tables_hold_the_values_and_current_orders_their_keyed_pseudonyms(built):
    key = (built / "pii.key").read_text().strip()
    assert stat.S_IMODE((built / "pii.key").stat().st_mode) == 0o600
    warehouse = built / "warehouse.duckdb"
    holders = query(
        warehouse,
        "select distinct columns.table_schema, columns.table_name, tables.table_type "
        "from information_schema.columns as columns inner join information_schema.tables as "
        "tables using (table_catalog, table_schema, table_name) "
        "where columns.column_name in ('receiver_phone', 'receiver_address') order by all",
    )
    assert holders == [
        ("raw", "orders", "BASE TABLE"),
        ("staging", "stg_orders", "VIEW"),
    ]
    rows = query(
        warehouse,
        "select raw.receiver_phone, raw.receiver_address, current.receiver_phone_hash, "
        "current.receiver_address_hash from intermediate.int_orders_current as current "
        "inner join raw.orders as raw "
        "on raw._load_id = current.load_id and raw._row_number = current.source_row_number "
        "where raw.receiver_phone is not null limit 200",
    )
    assert rows

    def keyed(value: str | None) -> str | None:
        if value is None:
            return None
        return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()

    for phone, address, phone_hash, address_hash in rows:
        assert (phone_hash, address_hash) == (keyed(phone), keyed(address))
    # Pseudonyms stay in the working database: not one of them is served.
    pseudonyms = {row[2] for row in rows}
    with duckdb.connect(str(built / "serving.duckdb"), read_only=True) as con:
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR'"
        ).fetchall():
            served = con.execute(f'select distinct "{column}" from {schema}.{table}').fetchall()
            assert not {row[0] for row in served} & pseudonyms, (schema, table, column)


@pytest.mark.slow
def test_the_docs_site_serves_docs_only_and_never_the_key(built):
    key = (built / "pii.key").read_text().strip()
    docs = built / "docs"
    for name in ("index.html", "manifest.json", "catalog.json"):
        assert (docs / name).is_file(), name
        assert key not in (docs / name).read_text(encoding="utf-8"), name
    manifest = json.loads((docs / "manifest.json").read_text())
    assert {exposure["name"] for exposure in manifest["exposures"].values()} >= DASHBOARDS
    # The docs reused the build's parse, which records the key, and did not keep it.
    log = (docs / "dbt.log").read_text(encoding="utf-8")
    assert "Partial parsing enabled" in log and "Unable to do partial parsing" not in log
    assert not (docs / "partial_parse.msgpack").exists()
    server = subprocess.Popen(
        [Path(sys.executable).with_name("trustwh"), "docs", "--home", built, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    local = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", server.stdout.readline()).group(0)
        for name in ("", *DOCS_FILES):
            if name and not (docs / name).exists():
                continue
            with local.open(url + name, timeout=30) as response:
                assert response.status == 200, name
                assert key.encode() not in response.read(), name
        for name in ("dbt.log", "partial_parse.msgpack", "run_results.json", "../pii.key"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                local.open(url + name, timeout=30)
            assert refused.value.code == 404, name
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_other_accounts_can_read_what_is_published_and_nothing_else(built):
    key = (built / "pii.key").read_text().strip().encode()
    assert stat.S_IMODE(built.stat().st_mode) == 0o755  # readers reach what is published
    readable = []
    for path in built.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        if path.relative_to(built).parts[0] in PUBLISHED:
            wanted = 0o055 if path.is_dir() else 0o044  # group and others: read (and enter)
            assert mode & wanted == wanted, f"{path} is {oct(mode)}: readers cannot open it"
            readable += [path] if path.is_file() else []
        elif path.parent == built:  # a closed folder closes everything in it
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}: other accounts can reach it"
    private = {path.name for path in built.iterdir()} - PUBLISHED
    assert private == {"warehouse.duckdb", "pii.key", "dbt-build-basis", "dbt-built-state"} | {
        "run.lock",
        "dbt-target",
        "logs",
        "dagster",
        "tmp",
    }
    names = {path.relative_to(built).as_posix() for path in readable}
    assert {"serving.duckdb", "quality/index.html", "docs/index.html"} <= names
    # The key is in dbt's target folder, and in nothing another account can open.
    assert key in (built / "dbt-target" / "manifest.json").read_bytes()
    for path in readable:
        assert key not in path.read_bytes(), path


@pytest.fixture
def usual_umask():
    """The usual default, under which earlier versions left their files open; restored after
    (a run leaves this process's umask private)."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_a_run_writes_private_files_and_closes_what_an_earlier_version_left_open(
    tmp_path, usual_umask
):
    """Through the resource every run opens, from the CLI or the Dagster UI alike."""
    home = tmp_path / "home"
    (home / "dbt-target").mkdir(parents=True)
    (home / "docs").mkdir()
    for name in ("warehouse.duckdb", "dbt-target/manifest.json", "docs/index.html"):
        (home / name).write_text("x")

    @dg.asset
    def writes(warehouse: WarehouseResource) -> None:
        (Path(warehouse.home) / "logs").mkdir()
        (Path(warehouse.home) / "logs" / "run.log").write_text("a row")

    assert dg.materialize([writes], resources={"warehouse": WarehouseResource(home=str(home))})
    modes = {
        path.relative_to(home).as_posix(): stat.S_IMODE(path.stat().st_mode)
        for path in home.rglob("*")
    }
    assert modes == {
        "warehouse.duckdb": 0o600,
        "dbt-target": 0o700,
        "dbt-target/manifest.json": 0o600,
        "logs": 0o700,
        "logs/run.log": 0o600,
        "run.lock": 0o600,
        "docs": 0o755,  # published: left as it was
        "docs/index.html": 0o644,
    }
    make_readable(home / "logs")
    assert stat.S_IMODE((home / "logs" / "run.log").stat().st_mode) == 0o644
    assert stat.S_IMODE((home / "logs").stat().st_mode) == 0o755


def test_a_file_of_another_account_is_left_as_it_is_and_said(tmp_path, usual_umask, caplog):
    home = tmp_path / "home"
    (home / "logs").mkdir(parents=True)
    (home / "logs" / "theirs.log").write_text("x")
    (home / "logs" / "ours.log").write_text("x")
    chmod = Path.chmod

    def refused_for_theirs(path, mode, **kwargs):
        if path.name == "theirs.log":  # as for a file another account owns, even as root
            raise PermissionError(1, "Operation not permitted", str(path))
        return chmod(path, mode, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Path, "chmod", refused_for_theirs)
        open_home(home)  # no exception: the run goes on
    assert stat.S_IMODE((home / "logs" / "ours.log").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "logs" / "theirs.log").stat().st_mode) == 0o644
    assert "could not set" in caplog.text and "theirs.log" in caplog.text
