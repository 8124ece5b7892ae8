"""examples/login.py as one test host serves it: unchanged, plus a header naming the host.

gunicorn runs ``hostapp:app`` from this folder on every host. ``MULTIHOST_HOST`` names the host
(``host1`` …) and goes out in ``X-Served-By``, so a client can tell which host answered. The
example reads its store and keys from ``WSGISESSION_STORE`` and ``WSGISESSION_SECRET``.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
example: WSGIApplication = importlib.import_module("login").app
HOST = os.environ.get("MULTIHOST_HOST", "unnamed")


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Serve the example and say which host did."""

    def named_start_response(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
        return start_response(status, [*headers, ("X-Served-By", HOST)], *exc)

    return example(environ, named_start_response)
