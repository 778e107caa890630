"""The governance report: the HTML builder on hand-made data, the reader on a serving-shaped
database, `trustwh report`, and the real page after a dirty run, in headless Chromium."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from markupsafe import escape

from dagster_project.defs.ingest.tables import create_tables
from dagster_project.defs.quality.report import (
    LOAD_LIMIT,
    CheckFailure,
    Load,
    QuarantinedRow,
    QuarantineFile,
    ReportData,
    RetentionCell,
    TrendPoint,
    read_report_data,
    render_report,
    write_report,
)
from dagster_project.sample_data.generate import generate

from .runs import query, trustwh

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9]{9}(?![0-9])")
EVIL_FILE = "orders_20240501_<script>alert('x')</script>.csv"


def _tiny_data() -> ReportData:
    """One blocked load with a hostile file name, its failed check and quarantined rows."""
    loaded = datetime(2024, 5, 2, 6, 0)
    blocked = Load(
        load_id="orders_20240501-evil",
        entity="orders",
        file_name=EVIL_FILE,
        export_date=date(2024, 5, 1),
        status="blocked",
        rows_read=20,
        rows_loaded=17,
        rows_quarantined=3,
        reason="quarantined 3 of 20 rows (15.0%), above the 5% threshold <b>bold</b>",
        loaded_at=loaded,
        checks_passed=4,
        checks_failed=1,
        failed_checks=("quarantine_share",),
    )
    good = Load(
        "orders_20240430-good", "orders", "orders_20240430.csv", date(2024, 4, 30),
        "published", 100, 100, 0, "", datetime(2024, 5, 1, 6, 0), 5, 0, (),
    )  # fmt: skip
    return ReportData(
        generated_at=datetime(2024, 5, 2, 7, 0),
        source="/tmp/serving.duckdb",
        published_at=loaded,
        status_counts={"published": 1, "blocked": 1},
        rows_read=120,
        rows_loaded=117,
        rows_quarantined=3,
        checks_run=10,
        checks_failed=1,
        blocked=[blocked],
        loads=[blocked, good],
        failed_checks=[
            CheckFailure(
                load_id=blocked.load_id,
                entity="orders",
                file_name=EVIL_FILE,
                check_name="quarantine_share",
                severity="error",
                observed_value=0.15,
                details="3 of 20 rows quarantined; threshold 5%",
                checked_at=loaded,
            )
        ],
        quarantine_files=[
            QuarantineFile(blocked.load_id, "orders", EVIL_FILE, "blocked", 20, 3, "x")
        ],
        quarantine_sample=[
            QuarantinedRow(
                load_id=blocked.load_id,
                entity="orders",
                file_name=EVIL_FILE,
                row_number=7,
                reason="paid_amount: negative amount -5.00",
                raw_record='{"order_id": "5007000000000000001", "receiver_phone": "138****5678", '
                '"paid_amount": "-5.00"}',
            ),
            # A record that slipped through unmasked is masked again on the page.
            QuarantinedRow(
                load_id=blocked.load_id,
                entity="orders",
                file_name=EVIL_FILE,
                row_number=8,
                reason="wrong field count: expected 21",
                raw_record='{"fields": ["5007000000000000002", "13912345678", null]}',
            ),
        ],
        trend=[
            TrendPoint(date(2024, 4, 30), 100, 0, 1, 0, 5, 0, 0),
            TrendPoint(date(2024, 5, 1), 20, 3, 1, 1, 5, 1, 0),
        ],
        retention=[
            RetentionCell(date(2024, 4, 1), 0, 50, 50, 1.0),
            RetentionCell(date(2024, 4, 1), 1, 50, 12, 0.24),
        ],
        threshold=0.05,
    )


def test_the_page_escapes_what_comes_from_outside_and_shows_only_masked_records():
    page = render_report(_tiny_data())
    assert "<script" not in page.lower()  # neither the file name's nor any of our own
    assert str(escape(EVIL_FILE)) in page  # &lt;script&gt;alert(&#39;x&#39;)…
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "138****5678" in page and "139****5678" in page
    assert not MOBILE.search(page)
    assert "paid_amount: negative amount -5.00" in page and "quarantine_share" in page
    # Our own page: nothing is fetched, from anywhere.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") == 3  # quarantine share, failed checks, retention heatmap


def test_the_page_links_gx_data_docs_only_when_they_exist(tmp_path):
    data = _tiny_data()
    assert "Data Docs" not in render_report(data)
    data.gx_docs = "gx/index.html"
    assert 'href="gx/index.html"' in render_report(data)


def test_the_page_is_replaced_whole(tmp_path):
    out = tmp_path / "quality"
    (out / "gx").mkdir(parents=True)
    (out / "gx" / "index.html").write_text("gx")
    first = write_report("<p>one</p>", out)
    second = write_report("<p>two</p>", out)
    assert first == second == out / "index.html"
    assert second.read_text() == "<p>two</p>"
    assert sorted(path.name for path in out.iterdir()) == ["gx", "index.html"]  # no temp files


def _serving(path: Path, loads: int) -> None:
    """A database shaped like serving.duckdb's quality schema (masked quarantine)."""
    with duckdb.connect(str(path)) as con:
        create_tables(con)
        con.execute("alter table quality.quarantine drop column raw_record")
        con.execute("alter table quality.quarantine rename raw_record_masked to raw_record")
        con.execute(
            """
            insert into quality.load_ledger (load_id, entity, file_name, file_sha256,
                export_date, status, rows_read, rows_loaded, rows_quarantined, reason, loaded_at)
            select
                'load-' || i, 'orders', 'orders_' || i || '.csv', 'sha',
                date '2024-01-01' + (i % 90)::int,
                case when i = 7 then 'blocked' when i % 50 = 0 then 'rejected'
                    else 'published' end,
                100, case when i = 7 then 80 else 99 end, case when i = 7 then 20 else 1 end,
                case when i = 7 then 'quarantined 20 of 100 rows' else '' end,
                timestamp '2024-01-01 06:00' + to_minutes(i)
            from range(?) as t(i)
            """,
            [loads],
        )
        con.execute(
            """
            insert into quality.quarantine
            select load_id, 'orders', file_name, 3, 'paid_amount: negative amount -1.00',
                '{"receiver_phone": "138****0000", "paid_amount": "-1.00"}'
            from quality.load_ledger
            """
        )
        con.execute(
            """
            insert into quality.check_results
            select load_id, 'quarantine_share', 'error', status != 'blocked',
                rows_quarantined / rows_read, 'share', loaded_at
            from quality.load_ledger
            """
        )


def test_the_reader_caps_thousands_of_loads_and_puts_blocked_ones_first(tmp_path):
    serving = tmp_path / "serving.duckdb"
    _serving(serving, loads=2000)
    data = read_report_data(serving, threshold=0.05)
    assert data.loads_total == 2000 and len(data.loads) == LOAD_LIMIT
    assert data.loads[0].load_id == "load-1999"  # newest first
    assert [load.load_id for load in data.blocked] == ["load-7"]
    assert data.blocked[0].failed_checks == ("quarantine_share",)
    assert len(data.rejected) == 40 and data.status_counts["blocked"] == 1
    assert data.quarantine_sample[0].load_id == "load-7"
    assert [failure.load_id for failure in data.failed_checks] == ["load-7"]
    assert 0 < len(data.trend) <= 60 and data.trend_period == "month"
    page = render_report(data)
    assert "showing the newest 500 of 2,000" in page
    assert "138****0000" in page and not MOBILE.search(page)


def test_building_the_report_makes_data_docs_of_any_earlier_build_work_offline(tmp_path):
    from dagster_project.defs.quality.data_docs import DATA_DOCS_INDEX
    from dagster_project.defs.quality.report import build_report
    from dagster_project.settings import Settings

    settings = Settings.load(home=tmp_path / "home", landing=tmp_path / "landing")
    settings.home.mkdir()
    _serving(settings.serving_path, loads=3)
    page = settings.home / "quality" / "gx" / DATA_DOCS_INDEX
    page.parent.mkdir(parents=True)
    cdn = '<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>'
    page.write_text(f"<html><head>{cdn}</head><body></body></html>")
    build_report(settings)
    html = page.read_text()
    assert "https://" not in html and "static/vendor/" in html

    # A run that failed after GX wrote its pages leaves the report current: `trustwh report`
    # still makes the new pages work offline.
    later = page.parent / "validations" / "later.html"
    later.parent.mkdir(parents=True)
    later.write_text(f"<html><head>{cdn}</head><body></body></html>")
    code, output = trustwh("report", "--home", settings.home)
    assert code == 0, output
    assert "https://" not in later.read_text() and "static/vendor/" in later.read_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_trustwh_report_prints_the_path_and_serves_it(tmp_path):
    home = tmp_path / "home"
    code, output = trustwh("report", "--home", home)
    assert code == 2 and "trustwh run" in output  # nothing built yet: a message
    home.mkdir()
    _serving(home / "serving.duckdb", loads=3)
    code, output = trustwh("report", "--home", home)
    page = home / "quality" / "index.html"
    assert code == 0 and output.strip() == str(page) and page.exists()

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.cli", "report", "--home", str(home), "--serve",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    body = response.read().decode()
                break
            except OSError:
                assert server.poll() is None, server.communicate()
                assert time.monotonic() < deadline, "trustwh report --serve did not start"
                time.sleep(0.3)
        assert "Governance report" in body and "orders_1.csv" in body
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "Traceback" not in err


@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    generate(root / "landing", scale=0.02, months=4, dirty=True)
    code, output = trustwh("run", "--landing", root / "landing", "--home", root / "home")
    assert code == 0, output
    return root / "home"


@pytest.mark.slow
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_the_report_shows_blocked_loads_failed_checks_and_quarantine_in_a_browser(dirty_run):
    from playwright.sync_api import expect, sync_playwright

    home = dirty_run
    serving = home / "serving.duckdb"
    page_path = home / "quality" / "index.html"
    assert page_path.exists(), "the run did not write the report"
    [(blocked_file, blocked_reason)] = query(
        serving,
        "select file_name, reason from quality.load_ledger "
        "where status = 'blocked' and file_name like '%gate_blocked%'",
    )
    failed_check = query(
        serving,
        "select check_name from quality.check_results as checks "
        "inner join quality.load_ledger as ledger on ledger.load_id = checks.load_id "
        "where not passed and ledger.file_name = ?",
        [blocked_file],
    )[0][0]
    quarantine_reason = query(
        serving,
        "select reason from quality.quarantine where file_name like '%negative_amount%'",
    )[0][0]

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri())
            blocked = page.locator("#blocked")
            expect(blocked).to_contain_text(blocked_file)
            expect(blocked).to_contain_text(blocked_reason)
            expect(page.locator("#checks")).to_contain_text(failed_check)
            expect(page.locator("#checks")).to_contain_text(blocked_file)
            row = page.locator("#quarantine tr", has_text=quarantine_reason).first
            expect(row).to_be_visible()
            expect(row).to_contain_text("refunds_20")
            expect(page.locator("#retention svg")).to_be_visible()
            text = page.locator("body").inner_text()
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            page.screenshot(path=str(artifacts / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests and all(url.startswith("file://") for url in requests), requests
    assert not MOBILE.search(text)
    addresses = [
        row[0]
        for row in query(
            home / "warehouse.duckdb",
            "select distinct receiver_address from raw.orders where receiver_address is not null",
        )
    ]
    assert addresses and not any(address in text for address in addresses)
