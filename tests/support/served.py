"""The WSGI application the load suite serves with gunicorn, its store chosen by the environment.

``WSGISESSION_STORE`` is the store URL (``sqlite:///…``, ``redis://…``, ``postgresql://…``);
``WSGISESSION_TEST_STORE_OPTIONS`` is a JSON object of extra store options (a Redis prefix, a
PostgreSQL table, an SQLite busy timeout); ``WSGISESSION_TEST_GATES`` is a folder where /slow
and /peek leave a ``NAME.loaded`` file and wait for ``NAME.go`` (files, because the test and the
request live in different processes); ``WSGISESSION_TEST_WARM=1`` uses the store at import, so
under ``--preload`` a connection is open before gunicorn forks. An SQLite store reports any
connection used outside the process that opened it, and with ``WSGISESSION_TEST_STALL=1`` it
sleeps *inside* the UPDATE of a save when the request asked for it (``/write?stall=NAME``), so a
test can kill -9 the worker in the middle of the transaction.

Routes (JSON answers): /noop · /dump · /rmw?k=&d=&last= (read-modify-write of a counter, plus a
distinct key and a shared "last" key) · /incr?k= · /own?me= · /write?v=&stall= · /set?k=v ·
/del?k · /login?user= · /logout · /slow?gate= · /peek?gate= · /bind?user= (log in, bound to the
user) · /as-user?op=read|write|relogin (answers with the session's user id) · /revoke-others.
Paths under /open/ are served by a second middleware on the same store with
``on_store_error="continue"``.
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

from webob import Request, Response

from wsgisession import Session, SessionMiddleware, SqliteStore, Store, StoreError, store_from_url

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


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, sort_keys=True)
    return Response(body, status=status, content_type="application/json", charset="utf-8")


def view(request: Request, session: Session) -> Response:
    """Route one request."""
    path, params = request.path_info, request.GET
    if path == "/noop":
        return Response("noop")
    if path == "/dump":
        return _json({"id": session.id, "new": session.is_new, "data": dict(session)})
    if path == "/rmw":
        key = params["k"]
        session[key] = session.get(key, 0) + 1
        if "d" in params:
            session[params["d"]] = 1
        if "last" in params:
            session["last"] = params["last"]
        return _json({key: session[key]})
    if path == "/incr":
        value = session.increment(params.get("k", "n"))
        time.sleep(float(params.get("hold", 0)))  # keeps this worker busy a while
        return _json(value)
    if path == "/own":
        me = params["me"]
        seen = dict(session)
        if "owner" not in session:
            session["owner"] = me
        session["n"] = session.get("n", 0) + 1
        return _json({"seen": seen, "data": dict(session)})
    if path == "/write":
        version = int(params["v"])
        for key in ("a", "b", "c"):
            session[key] = version
        session["blob"] = f"{version}:" + "x" * 2000
        STALL.name = params.get("stall")
        if STALL.name:
            session["stall"] = STALL.name  # what a PostgreSQL test trigger looks for
        else:
            session.pop("stall", None)
        return _json(version)
    if path == "/set":
        for key, value in params.items():
            session[key] = value
        return _json(dict(session))
    if path == "/del":
        for key in params:
            session.pop(key, None)
        return _json(dict(session))
    if path == "/login":
        session.regenerate()
        session["user"] = params.get("user", "alice")
        return _json(dict(session))
    if path == "/logout":
        session.destroy()
        return Response("bye")
    if path == "/bind":
        session.regenerate()
        session.set_user(params["user"])
        session["user"] = params["user"]
        return _json({"user_id": session.user_id})
    if path == "/as-user":
        # What a logged-in browser does: read, write, or log in again (a new id, same user). A
        # session that is no longer bound (revoked, say) is never bound again here: only /bind
        # binds, so a bound session that shows up later was brought back, not logged in anew.
        op = params.get("op", "read")
        user_id = session.user_id
        if user_id is not None and op == "write":
            session["n"] = session.get("n", 0) + 1
        elif user_id is not None and op == "relogin":
            session.regenerate()
            session.set_user(user_id)
        return _json({"user_id": user_id, "n": session.get("n")})
    if path == "/revoke-others":
        return _json({"revoked": session.revoke_other_sessions(), "user_id": session.user_id})
    if path == "/slow":
        session.get("user")
        _wait_for(params["gate"])
        session["slow"] = "done"
        return _json(dict(session))
    if path == "/peek":
        value = session.get("a")
        _wait_for(params["gate"])
        return _json({"a": value})
    return Response("not found", status=404)


def inner(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The plain application: route and answer."""
    response = view(Request(environ), environ["wsgisession"])
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
