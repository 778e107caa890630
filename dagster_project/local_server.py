"""Serving a folder on localhost until Ctrl-C or a terminate signal."""

from __future__ import annotations

import contextlib
import http.server
import signal


def _stop(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve_until_stopped(server: http.server.HTTPServer) -> None:
    """Serve until SIGINT (Ctrl-C) or SIGTERM. Both are handled here, as a process started
    in the background by a non-interactive shell inherits them ignored and would otherwise
    never stop."""
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
