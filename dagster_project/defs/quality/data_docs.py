"""GX Data Docs that work offline.

GX's page templates load jQuery, Bootstrap, bootstrap-table, Vega, Font Awesome and a logo
from CDNs and S3, and its template loader cannot be overridden. So whenever the governance
report is built (`report.build_report`), `make_offline` copies the vendored copies of exactly
those assets (`vendor/`, see its README) into the site and points every page at them: the
report's links then open complete pages with no network at all.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

# GX Data Docs of the validations, under HOME/quality/gx/ (the governance report links them).
DATA_DOCS_INDEX = Path("uncommitted", "data_docs", "local_site", "index.html")
VENDOR = Path(__file__).with_name("vendor")
SITE_VENDOR = Path("static", "vendor")
# Relative to the site root: GX copies its own static folder there on every build.
GX_LOGO = Path("static", "images", "logo-long.png")

_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
_JSDELIVR = "https://cdn.jsdelivr.net/npm/"
_UNPKG = "https://unpkg.com/"
_FILTER_CONTROL = "dist/extensions/filter-control/bootstrap-table-filter-control"
_GX_ASSETS = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/"

# Every resource GX 1.24's templates load from outside, and its vendored copy (under
# `vendor/`). Exact URLs on purpose: a GX upgrade that changes one shows up as unknown.
ASSETS = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/dist/jquery.min.js",
    _CDNJS + "popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/dist/umd/popper.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/dist/css/bootstrap.min.css"
    ),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/dist/js/bootstrap.min.js"
    ),
    _UNPKG + "bootstrap-table@1.19.1/dist/bootstrap-table.min.css": (
        "bootstrap-table-1.19.1/dist/bootstrap-table.min.css"
    ),
    _UNPKG + "bootstrap-table@1.19.1/dist/bootstrap-table.min.js": (
        "bootstrap-table-1.19.1/dist/bootstrap-table.min.js"
    ),
    _UNPKG + f"bootstrap-table@1.19.1/{_FILTER_CONTROL}.min.js": (
        f"bootstrap-table-1.19.1/{_FILTER_CONTROL}.min.js"
    ),
    _UNPKG + f"bootstrap-table@1.19.0/{_FILTER_CONTROL}.css": (
        f"bootstrap-table-1.19.0/{_FILTER_CONTROL}.css"
    ),
    _UNPKG + f"bootstrap-table@1.19.0/{_FILTER_CONTROL}.min.css": (
        f"bootstrap-table-1.19.0/{_FILTER_CONTROL}.min.css"
    ),
    _CDNJS + "bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/dist/css/bootstrap-datepicker.min.css"
    ),
    _CDNJS + "bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0/dist/js/bootstrap-datepicker.min.js"
    ),
    _JSDELIVR + "@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "bootstrap-dark-1.1.0/dist/css/bootstrap-prefers-dark.min.css"
    ),
    _CDNJS + "font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    # The floating majors GX asks for (`vega@5` …), pinned: see vendor/README.md.
    _JSDELIVR + "vega@5": "vega-5.33.1/build/vega.min.js",
    _JSDELIVR + "vega-lite@5": "vega-lite-5.23.0/build/vega-lite.min.js",
    _JSDELIVR + "vega-embed@6": "vega-embed-6.29.0/build/vega-embed.min.js",
    # The dark-mode navbar logo of GX's inlined default styles; GX ships no local copy.
    _GX_ASSETS + "full_logo_dark.png": "great_expectations-1.24.1/logo-long-dark.png",
}
# The navbar logo carries a per-page query string (build time, data context id): GX's own
# copy of it sits in the site's static folder.
LOGO_URL = _GX_ASSETS + "logo-long.png"

# Tags whose src/href the browser loads (an <a href> is navigation and stays as it is).
_LOADING_TAG = re.compile(
    r"<(?:script|link|img|iframe|frame|source|embed|audio|video|track|input)\b[^>]*>",
    re.IGNORECASE,
)
_URL_ATTR = re.compile(
    r"""(\s(?:src|href|poster)\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)
_SRI_ATTR = re.compile(
    r"""\s(?:integrity|crossorigin)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?""", re.IGNORECASE
)
# CSS in <style> blocks and style attributes: url(...) and @import "...".
_CSS_URL = re.compile(r"""url\(\s*(["']?)([^"')\s]+)\1\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(["'])([^"']+)\1""", re.IGNORECASE)
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)


class RemoteResourceError(ValueError):
    """A page still loads something from outside the site."""


def make_offline(site_dir: Path, *, strict: bool = False) -> None:
    """Make the Data Docs site under `site_dir` load nothing from the network.

    Copies the vendored assets into `site_dir/static/vendor/` and rewrites each page's CDN
    references into paths relative to that page. Idempotent: files are written only when
    their content changes. A remote resource with no vendored copy is left in place with a
    warning naming it (the docs are a convenience, not worth failing a run over); with
    `strict`, as in tests, it raises `RemoteResourceError` instead."""
    site_dir = Path(site_dir)
    if not site_dir.is_dir():
        return
    _sync_vendor(site_dir / SITE_VENDOR)
    unknown: dict[str, list[Path]] = {}
    for page in sorted(site_dir.rglob("*.html")):
        text = page.read_bytes().decode("utf-8")
        rewritten = _rewrite(text, page, site_dir, unknown)
        if rewritten != text:
            page.write_bytes(rewritten.encode("utf-8"))
    if not unknown:
        return
    if strict:
        listed = "; ".join(
            f"{url} (in {', '.join(str(p.relative_to(site_dir)) for p in pages[:3])})"
            for url, pages in sorted(unknown.items())
        )
        raise RemoteResourceError(
            f"Data Docs load remote resources with no vendored copy: {listed}"
        )
    for url, pages in sorted(unknown.items()):
        log.warning(
            "GX Data Docs load %s, which has no vendored copy (%d page(s), e.g. %s): "
            "those pages need the network",
            url,
            len(pages),
            pages[0].relative_to(site_dir),
        )


def remote_resources(html: str) -> list[str]:
    """The remote URLs a page loads: src/href of loading tags, CSS url() and @import."""
    found = []
    for tag in _LOADING_TAG.finditer(html):
        for attr in _URL_ATTR.finditer(tag.group(0)):
            value = _attr_value(attr)
            if _REMOTE.match(value):
                found.append(value)
    for pattern in (_CSS_URL, _CSS_IMPORT):
        found += [
            match.group(2) for match in pattern.finditer(html) if _REMOTE.match(match.group(2))
        ]
    return found


def _rewrite(html: str, page: Path, site_dir: Path, unknown: dict[str, list[Path]]) -> str:
    """The page with each known remote resource pointed at its local copy; the remote
    resources with no local copy are added to `unknown`."""

    def local(url: str) -> str | None:
        if not _REMOTE.match(url):
            return None
        target = _local_target(url)
        if target is None:
            pages = unknown.setdefault(url, [])
            if page not in pages:
                pages.append(page)
            return None
        return Path(os.path.relpath(site_dir / target, page.parent)).as_posix()

    def tag(match: re.Match[str]) -> str:
        rewrote = False

        def attr(found: re.Match[str]) -> str:
            nonlocal rewrote
            path = local(_attr_value(found))
            if path is None:
                return found.group(0)
            rewrote = True
            return f'{found.group(1)}"{path}"'

        text = _URL_ATTR.sub(attr, match.group(0))
        # Subresource integrity and CORS mode only make sense for the CDN copies.
        return _SRI_ATTR.sub("", text) if rewrote else text

    def css_url(match: re.Match[str]) -> str:
        path = local(match.group(2))
        return match.group(0) if path is None else f"url('{path}')"

    def css_import(match: re.Match[str]) -> str:
        path = local(match.group(2))
        return match.group(0) if path is None else f'@import "{path}"'

    html = _LOADING_TAG.sub(tag, html)
    html = _CSS_URL.sub(css_url, html)
    return _CSS_IMPORT.sub(css_import, html)


def _attr_value(match: re.Match[str]) -> str:
    """The value of a `_URL_ATTR` match, whichever way it is quoted."""
    return next(group for group in match.groups()[1:] if group is not None)


def _local_target(url: str) -> Path | None:
    """Where, relative to the site root, the local copy of a remote URL lives."""
    url = url.strip()
    if url in ASSETS:
        return SITE_VENDOR / ASSETS[url]
    if url.split("?", 1)[0] == LOGO_URL:
        return GX_LOGO
    return None


def _sync_vendor(target: Path) -> None:
    """Mirror `vendor/` into the site, writing only files that differ and removing stale
    ones (a previous version's), so a rebuild leaves unchanged files untouched."""
    wanted = {path.relative_to(VENDOR) for path in VENDOR.rglob("*") if path.is_file()}
    for relative in sorted(wanted):
        source, copy = VENDOR / relative, target / relative
        if copy.is_file() and copy.read_bytes() == source.read_bytes():
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
    if not target.is_dir():
        return
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_file() and path.relative_to(target) not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def try_make_offline(site_dir: Path) -> None:
    """`make_offline` where the docs are a convenience: a failure is logged, never raised
    (it must not block a load or the report)."""
    try:
        make_offline(site_dir)
    except Exception:
        log.exception("could not make the GX Data Docs under %s work offline", site_dir)
