"""GX Data Docs work offline: every CDN asset GX's templates load is vendored, and each built
page points at the local copies. A fake site, a site GX really builds, and Chromium with the
network cut off."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import logging
import os
import re
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.ingest.contract import ORDERS
from dagster_project.defs.ingest.loader import ingest_entity
from dagster_project.defs.ingest.tables import create_tables
from dagster_project.defs.quality.data_docs import (
    ASSETS,
    GX_LOGO,
    LOGO_URL,
    SITE_VENDOR,
    VENDOR,
    RemoteResourceError,
    make_offline,
    remote_resources,
)
from dagster_project.defs.quality.expectations import DATA_DOCS_INDEX, DataDocs, validate_loads

from .exports import order, write_export
from .test_report import CHROMIUM, CHROMIUM_ARGS, ROOT

# GX's templates and static files, found without importing GX (which costs seconds).
GX_VIEW = Path(importlib.util.find_spec("great_expectations").origin).parent / "render" / "view"

# The loading tags of GX 1.24.1's templates, verbatim (page.j2, index_page.j2,
# js_script_imports.j2, top_navbar.j2 as rendered, cloud-footer.j2, and the dark-mode rule
# of the default styles every page inlines).
HEAD = """
    <link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css">
    <link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
    <link rel="stylesheet" type="text/css" href="https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css">
    <link rel="stylesheet" type="text/css" href="https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css">
    <link rel="stylesheet" type="text/css" href="https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css">
    <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css" />
    <style>
@media (prefers-color-scheme: dark) {
  .navbar-brand a {
    background: url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png') 0 0 no-repeat;
    background-size: 228.75px 50px;
  }
}
    </style>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://cdn.jsdelivr.net/npm/vega-lite@5"></script>
<script src="https://cdn.jsdelivr.net/npm/vega-embed@6"></script>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">

<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" integrity="sha384-ApNbgh9B+Y1QKtv3Rn7W3mgPxhU9K/ScQsAP7hUibX39j7fakFPskvXusvfa0b4Q" crossorigin="anonymous"></script>
<script src="https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js" integrity="sha384-JjSmVgyd0p3pXB1rRibZUAYoIIy6OrQ6VrjIEaFf/nJGzIxFDsf4x0xIM+B07jRM" crossorigin="anonymous"></script>
<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js"></script>
<script src="https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js"></script>
"""  # noqa: E501
BODY = """
<nav class="navbar navbar-expand-md sticky-top border-bottom" style="height: 70px">
      <div class="float-left navbar-brand m-0 h-100">
        <a href="{home}">
          <img
            class="NO-CACHE"
            src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=20261125T232615.137340Z&dataContextId=5bb978b7-16d6-4645-a1d4-057ebeea9987"
            alt="Great Expectations"
            style="width: auto; height: 50px"
          />
        </a>
      </div>
</nav>
<footer>
  <p>Stay current on everything GX with our newsletter <a href="https://greatexpectations.io/newsletter?utm_source=datadocs&utm_medium=product&utm_campaign=newsletter&utm_content=form">Subscribe</a></p>
</footer>
"""
NEWSLETTER = "https://greatexpectations.io/newsletter?"
# What a browser loads from a page: src/href of these tags, and CSS url().
LOADED = re.compile(r"""<(?:script|link|img)\b[^>]*?\s(?:src|href)\s*=\s*["']([^"']+)["']""")
CSS_URL = re.compile(r"""url\(\s*["']?([^"')\s]+)["']?\s*\)""")
LOADED_AT = datetime(2021, 10, 1, 8, 0, 0)


def page(home: str) -> str:
    body = BODY.format(home=home)
    return f"<!DOCTYPE html>\n<html><head>{HEAD}</head>\n<body>{body}</body></html>\n"


def loaded(html: str) -> list[str]:
    return LOADED.findall(html) + CSS_URL.findall(html)


def is_remote(url: str) -> bool:
    return re.match(r"(?:https?:)?//", url) is not None


def assert_offline(site: Path) -> list[Path]:
    """Every page loads only files of the site that exist; returns the pages."""
    pages = sorted(site.rglob("*.html"))
    assert pages
    for html_page in pages:
        html = html_page.read_text(encoding="utf-8")
        assert remote_resources(html) == [], html_page
        for url in loaded(html):
            assert not is_remote(url), (html_page, url)
            if url.startswith(("data:", "#")):
                continue
            target = (html_page.parent / url.split("?")[0]).resolve()
            # GX's own favicon link is one level short on validation pages (GX's bug, not
            # a remote resource): only what make_offline points at has to resolve.
            if "static/vendor/" in url or url.endswith(GX_LOGO.name):
                assert target.is_file(), (html_page, url)
        assert "integrity=" not in html and "crossorigin" not in html, html_page
    return pages


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def fake_site(tmp_path: Path) -> Path:
    """Pages at depth 0 and 4 with GX's CDN tags, and the logo GX copies into every site."""
    site = tmp_path / "local_site"
    deep = site / "validations" / "raw" / "orders" / "20210901T000000Z"
    deep.mkdir(parents=True)
    (site / "index.html").write_text(page("#"), encoding="utf-8")
    (deep / "warehouse-raw.orders.html").write_text(page("../../../../index.html"))
    (site / GX_LOGO).parent.mkdir(parents=True)
    (site / GX_LOGO).write_bytes((GX_VIEW / "static" / "images" / "logo-long.png").read_bytes())
    return site


# --- The vendored files ---------------------------------------------------------------


def test_every_mapped_asset_is_vendored_with_its_license_and_checksum():
    readme = (VENDOR / "README.md").read_text(encoding="utf-8")
    sums = dict(
        reversed(line.split("  ", 1)) for line in re.findall(r"^[0-9a-f]{64}  \S+$", readme, re.M)
    )
    for path in set(ASSETS.values()):
        file = VENDOR / path
        assert file.is_file(), path
        assert f"`{path}`" in readme, f"{path} is not listed in vendor/README.md"
        assert sums.get(path) == hashlib.sha256(file.read_bytes()).hexdigest(), path
        package = VENDOR / Path(path).parts[0]
        assert list(package.glob("LICENSE*")), f"{package.name} has no license file"
    shipped = {
        str(path.relative_to(VENDOR))
        for path in VENDOR.rglob("*")
        if path.is_file() and not path.name.startswith(("LICENSE", "README"))
    }
    assert set(sums) == shipped, "vendor/README.md's checksums do not list exactly the assets"


def test_the_vendored_css_loads_only_vendored_files():
    for css in VENDOR.rglob("*.css"):
        for url in CSS_URL.findall(css.read_text(encoding="utf-8")):
            if url.startswith("data:"):
                continue
            assert not is_remote(url), (css, url)
            assert (css.parent / url).resolve().is_file(), (css, url)


def test_the_vendored_files_are_the_ones_gx_pins_by_integrity():
    """The two tags GX pins with subresource integrity get byte-identical local copies."""
    imports = (GX_VIEW / "templates" / "js_script_imports.j2").read_text()
    pinned = re.findall(r'src="([^"]+)" integrity="sha384-([^"]+)"', imports)
    assert len(pinned) == 2
    for url, digest in pinned:
        local = (VENDOR / ASSETS[url]).read_bytes()
        assert base64.b64encode(hashlib.sha384(local).digest()).decode() == digest, url


def test_every_remote_url_in_gx_s_templates_is_vendored_or_a_plain_link():
    """A GX upgrade that loads something new fails here, before any page is built."""
    sources = [*(GX_VIEW / "templates").glob("*.j2"), *(GX_VIEW / "static").rglob("*.css")]
    urls = {
        url
        for source in sources
        for url in re.findall(r"""https?://[^\s"'<>)]+""", source.read_text(encoding="utf-8"))
    }
    images = LOGO_URL.rsplit("/", 1)[0] + "/"  # top_navbar.j2's `static_images_dir`
    unknown = urls - set(ASSETS) - {images}
    # Only navigation is left: <a href> to GX's site and docs, never loaded by the page.
    assert all(re.match(r"https://(docs\.)?greatexpectations\.io\b", url) for url in unknown), (
        sorted(unknown)
    )


# --- make_offline on a fake site -----------------------------------------------------


def test_make_offline_points_every_loaded_resource_at_a_local_copy(fake_site):
    make_offline(fake_site, strict=True)
    pages = assert_offline(fake_site)
    assert len(pages) == 2
    index = (fake_site / "index.html").read_text()
    assert 'src="static/vendor/jquery-3.7.1/dist/jquery.min.js"' in index
    assert 'src="static/images/logo-long.png"' in index
    assert "url('static/vendor/great_expectations-1.24.1/logo-long-dark.png')" in index
    deep = next(fake_site.glob("validations/*/*/*/*.html")).read_text()
    assert 'href="../../../../static/vendor/bootstrap-4.3.1/dist/css/bootstrap.min.css"' in deep
    # Navigation stays a link to the web.
    assert NEWSLETTER in index and NEWSLETTER in deep
    for path in set(ASSETS.values()):
        assert (fake_site / SITE_VENDOR / path).read_bytes() == (VENDOR / path).read_bytes()


def test_make_offline_twice_changes_nothing(fake_site):
    make_offline(fake_site, strict=True)
    before = snapshot(fake_site)
    make_offline(fake_site, strict=True)
    assert snapshot(fake_site) == before


def test_make_offline_refreshes_a_changed_or_stale_vendored_file(fake_site):
    make_offline(fake_site)
    jquery = fake_site / SITE_VENDOR / ASSETS["https://code.jquery.com/jquery-3.7.1.min.js"]
    jquery.write_text("tampered")
    stale = fake_site / SITE_VENDOR / "jquery-3.6.0" / "jquery.min.js"
    stale.parent.mkdir()
    stale.write_text("old")
    make_offline(fake_site)
    assert (
        jquery.read_bytes()
        == (VENDOR / ASSETS["https://code.jquery.com/jquery-3.7.1.min.js"]).read_bytes()
    )
    assert not stale.parent.exists()


@pytest.mark.parametrize(
    ("tag", "unknown"),
    [
        ('<script src="{}"></script>', "https://cdn.example.com/new-widget@2/widget.min.js"),
        ("<img src={} alt=x>", "//images.example.com/logo.png"),
        ("<style>body {{ background: url({}) }}</style>", "https://example.com/bg.png"),
    ],
)
def test_an_unknown_remote_resource_fails_in_tests_and_is_left_with_a_warning(
    fake_site, caplog, tag, unknown
):
    index = fake_site / "index.html"
    index.write_text(index.read_text().replace("</head>", tag.format(unknown) + "</head>"))
    with pytest.raises(RemoteResourceError, match=re.escape(unknown)):
        make_offline(fake_site, strict=True)
    with caplog.at_level(logging.WARNING, logger="dagster_project.defs.quality.data_docs"):
        make_offline(fake_site)
    assert unknown in caplog.text and "index.html" in caplog.text
    html = index.read_text()
    assert remote_resources(html) == [unknown]
    assert "static/vendor/jquery-3.7.1/dist/jquery.min.js" in html


def test_make_offline_ignores_a_site_that_was_never_built(tmp_path):
    make_offline(tmp_path / "nothing_here", strict=True)
    assert not (tmp_path / "nothing_here").exists()


# --- A site GX really builds -----------------------------------------------------------


@pytest.fixture(scope="module")
def gx_site(tmp_path_factory) -> Path:
    """The Data Docs of one real validation of a tiny orders load."""
    root = tmp_path_factory.mktemp("data_docs")
    rows = [order(f"10{index:08d}") for index in range(3)]
    rows.append(order("1000000000"))  # a duplicate key: one failing expectation on the page
    write_export(root / "landing", "orders", "orders_20210902.csv", rows)
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        create_tables(con)
        entries = ingest_entity(
            con, ORDERS, root / "landing" / "orders", root / "tmp", LOADED_AT, 0.05
        )
        docs = DataDocs(root / "gx")
        outcomes = validate_loads(con, ORDERS, entries, docs=docs)
        assert not (root / "gx" / DATA_DOCS_INDEX).exists()  # rendered once, by build()
        docs.build()
    finally:
        con.close()
    assert outcomes and not [outcome.error for outcome in outcomes if outcome.error]
    site = root / "gx" / DATA_DOCS_INDEX.parent
    assert (site / "index.html").is_file()
    make_offline(site, strict=True)  # as building the report does
    return site


def test_the_data_docs_gx_builds_load_nothing_remote(gx_site):
    pages = assert_offline(gx_site)
    relative = {str(path.relative_to(gx_site)) for path in pages}
    assert "index.html" in relative
    assert any(name.startswith("validations/") for name in relative), relative
    assert any(name.startswith("expectations/") for name in relative), relative
    before = snapshot(gx_site)
    make_offline(gx_site, strict=True)  # a second pass finds nothing left to change
    assert snapshot(gx_site) == before
    # GX copies its static folder into the site: the navbar logo is GX's own.
    assert (gx_site / GX_LOGO).is_file()


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_the_data_docs_work_in_a_browser_with_no_network(gx_site):
    from playwright.sync_api import expect, sync_playwright

    index = gx_site / "index.html"
    [validation] = (gx_site / "validations").rglob("*.html")
    requested: list[str] = []
    aborted: list[str] = []
    failed: list[str] = []
    errors: list[str] = []

    def route(route):
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    viewport={"width": 1400, "height": 900}, color_scheme=scheme
                )
                context.route("**/*", route)
                page = context.new_page()
                page.on("request", lambda request: requested.append(request.url))
                page.on(
                    "requestfailed",
                    lambda request: failed.append(f"{request.url}: {request.failure}"),
                )
                page.on("pageerror", lambda error: errors.append(str(error)))

                page.goto(index.as_uri(), wait_until="load")
                assert page.evaluate(
                    "typeof jQuery !== 'undefined' && !!jQuery.fn.bootstrapTable"
                    " && typeof vegaEmbed === 'function' && typeof Popper === 'function'"
                )
                # Bootstrap's CSS applies: its .navbar is a flexbox (a <nav> is a block).
                assert (
                    page.evaluate("getComputedStyle(document.querySelector('.navbar')).display")
                    == "flex"
                )
                rows = page.locator(
                    "table.ge-index-page-validation-results-table tbody tr[data-index]"
                )
                expect(rows.first).to_be_visible()
                expect(rows.first).to_contain_text("orders")
                page.screenshot(path=str(artifacts / f"data-docs-index-{scheme}.png"))

                page.goto(validation.as_uri(), wait_until="load")
                page.evaluate("document.fonts.ready")
                icon = page.locator(".fas").first
                expect(icon).to_be_visible()
                assert "Font Awesome" in icon.evaluate("e => getComputedStyle(e).fontFamily")
                assert page.evaluate(
                    "[...document.fonts].some(f => f.family.includes('Font Awesome')"
                    " && f.status === 'loaded')"
                )
                page.screenshot(
                    path=str(artifacts / f"data-docs-validation-{scheme}.png"), full_page=True
                )
                context.close()
        finally:
            browser.close()
    assert not aborted, aborted
    assert not failed, failed
    assert not errors, errors
    assert all(url.startswith("file://") for url in requested), requested
    assert any(url.endswith("/fa-solid-900.woff2") for url in requested), requested
    # The dark-mode logo of GX's inlined styles is the vendored one.
    assert any(url.endswith("/logo-long-dark.png") for url in requested), requested
    assert os.path.getsize(artifacts / "data-docs-index-light.png") > 0
