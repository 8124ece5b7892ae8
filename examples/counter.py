"""The page counter: every visit adds one to a number kept in the session.

Run it with ``make run`` (gunicorn, two workers, SQLite) and open http://127.0.0.1:8000.
``WSGISESSION_STORE`` picks another store, e.g. ``redis://127.0.0.1:6379/0``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wsgisession import SessionMiddleware, store_from_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def counter(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Count this visitor's visits in the session and say how many there were."""
    session = environ["wsgisession"]
    count = session.get("pageCount", 0) + 1
    session.set("pageCount", count)
    body = f"Visited page {count} times\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]


store = store_from_url(os.environ.get("WSGISESSION_STORE", "sqlite:///counter-sessions.db"))
#: WSGISESSION_SECRET: cookie-signing keys, comma-separated, newest first (optional here).
secret_keys = [key for key in os.environ.get("WSGISESSION_SECRET", "").split(",") if key]
app = SessionMiddleware(counter, store=store, secret_keys=secret_keys or None)
