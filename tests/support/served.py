"""The test app as the load suite serves it with gunicorn, its store chosen by the environment.

``WSGISESSION_STORE`` is the store URL (``sqlite:///…``, ``redis://…``, ``postgresql://…``);
``WSGISESSION_TEST_STORE_OPTIONS`` is a JSON object of extra store options (a Redis prefix, a
PostgreSQL table, an SQLite busy timeout); ``WSGISESSION_TEST_GATES`` is a folder where /slow
and /peek leave a ``NAME.loaded`` file and wait for ``NAME.go`` (files, because the test and the
request live in different processes); ``WSGISESSION_TEST_WARM=1`` uses the store at import, so
under ``--preload`` a connection is open before gunicorn forks. An SQLite store reports any
connection used outside the process that opened it, and with ``WSGISESSION_TEST_STALL=1`` it
sleeps *inside* the UPDATE of a save when the request asked for it (``/write?stall=NAME``), so a
test can kill -9 the worker in the middle of the transaction.

The routes are tests/support/app.py's, written once there; this module adds only what serving
needs: the store from the environment, pauses that wait on files, the stall, and the worker's
pid in an ``X-Worker-Pid`` header. Paths under /open/ are served by a second middleware on the
same store with ``on_store_error="continue"``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webob import Request

from tests.support.app import view
from wsgisession import SessionMiddleware, SqliteStore, Store, StoreError, store_from_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

GATES = Path(os.environ.get("WSGISESSION_TEST_GATES", "."))
#: Which stall the current request thread asked for, read by the SQL function of the save.
STALL = threading.local()


class CheckedSqliteStore(SqliteStore):
    """An SQLite store that reports a connection used outside its process, and can stall.

    Every connection remembers the process that opened it; a statement run on it from any other
    process (a connection carried across gunicorn's fork) prints a line the tests look for.
    With ``WSGISESSION_TEST_STALL=1`` a TEMP trigger calls a Python function after every UPDATE
    of the sessions table; when the saving request asked for a stall, the function writes this
    process's id to ``GATES/NAME.stalled`` and sleeps, holding the write transaction open.
    """

    def prepare_connection(self, conn: sqlite3.Connection) -> None:
        """Watch the connection's process; register the stall function and its trigger."""
        opened_in = os.getpid()

        def check(statement: str) -> None:
            if os.getpid() != opened_in:
                print(
                    f"SQLITE CONNECTION SHARED ACROSS FORK: opened in {opened_in}, "
                    f"used in {os.getpid()} for {statement[:40]!r}",
                    file=sys.stderr,
                    flush=True,
                )

        conn.set_trace_callback(check)
        if os.environ.get("WSGISESSION_TEST_STALL") == "1":
            conn.create_function("wsgisession_test_stall", 0, _stall)
            conn.execute(
                f"CREATE TEMP TRIGGER IF NOT EXISTS wsgisession_test_stall AFTER UPDATE ON "
                f"main.{self.table} BEGIN SELECT wsgisession_test_stall(); END"
            )


def _stall() -> int:
    name = getattr(STALL, "name", None)
    if name:
        (GATES / f"{name}.stalled").write_text(str(os.getpid()))
        time.sleep(60)
    return 0


def _wait_for(name: str) -> None:
    """Say this request has loaded its session, then wait until the test lets it go on."""
    (GATES / f"{name}.loaded").write_text(str(os.getpid()))
    deadline = time.monotonic() + 15
    while not (GATES / f"{name}.go").exists() and time.monotonic() < deadline:
        time.sleep(0.005)


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The test app's routes, pausing on files; /write?stall= also arms this thread's stall."""
    request = Request(environ)
    if request.path_info == "/write":
        STALL.name = request.GET.get("stall")  # read by the SQLite trigger during the save
    response = view(request, environ["wsgisession"], pause=_wait_for)
    return response(environ, start_response)


def build_store() -> Store:
    """The store the environment names."""
    url = os.environ["WSGISESSION_STORE"]
    options = json.loads(os.environ.get("WSGISESSION_TEST_STORE_OPTIONS", "{}"))
    if url.startswith("sqlite:///"):
        return CheckedSqliteStore(url[len("sqlite:///") :], **options)
    return store_from_url(url, **options)


store = build_store()
if os.environ.get("WSGISESSION_TEST_WARM") == "1":
    # Open a connection before gunicorn forks (with --preload). A worker that boots while a
    # test has the store's server stopped must still boot, as a real app would.
    with contextlib.suppress(StoreError):
        store.stats(time.time())
closed = SessionMiddleware(inner, store=store)
open_ = SessionMiddleware(inner, store=store, on_store_error="continue")


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Serve /open/… fail-open and the rest with the 503 policy; name the worker in a header."""
    STALL.name = None
    pid = ("X-Worker-Pid", str(os.getpid()))

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, pid], exc_info)

    path = environ.get("PATH_INFO", "")
    if path.startswith("/open/"):
        environ["PATH_INFO"] = path[len("/open") :]
        return open_(environ, start)
    return closed(environ, start)
