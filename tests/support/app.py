"""The WSGI application the middleware tests drive, with the routes SECURITY.md names.

/set?k=v · /get?k= · /noop (never touches the session) · /login (regenerate, then user) ·
/logout (destroy) · /boom (sets a key, then raises) · /slow (waits on an event, then sets a
key) · /slow-login (loads, waits on an event, then regenerates) · /peek (reads, then waits) ·
/cart (appends to a nested list) · /flash?m= · /flashes · /incr?k= · /remember?s= · /dump
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from webob import Request, Response

from wsgisession import Session, SessionMiddleware, Store, StoreUnavailableError
from wsgisession.records import Changes, Record
from wsgisession.testing import CountingStore

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

#: /slow waits for this before it sets its key, so a test can interleave other requests.
SLOW_GATE: dict[str, threading.Event] = {}
#: /slow sets this once it has loaded the session.
SLOW_LOADED: dict[str, threading.Event] = {}


def _json(data: Any) -> Response:
    return Response(
        json.dumps(data, sort_keys=True), content_type="application/json", charset="utf-8"
    )


def view(request: Request, session: Session) -> Response:
    """Route one request; every route but /noop uses the session."""
    path, params = request.path_info, request.GET
    if path == "/noop":
        return Response("noop")
    if path == "/set":
        for key, value in params.items():
            session[key] = value
        return _json(dict(session))
    if path == "/get":
        return _json({key: session.get(key) for key in params})
    if path == "/has":
        return _json({key: key in session for key in params})
    if path == "/len":
        return _json(len(session))
    if path == "/keys":
        return _json(sorted(session))
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
    if path == "/logout-flash":
        session.destroy()
        session.flash("logged out")
        return Response("bye")
    if path == "/boom":
        session["boom"] = "yes"
        raise RuntimeError("boom")
    if path == "/slow":
        name = params.get("gate", "")
        gate = SLOW_GATE.get(name)
        session.get("user")
        if name in SLOW_LOADED:
            SLOW_LOADED[name].set()
        if gate is not None:
            gate.wait(10)
        session["slow"] = "done"
        return _json(dict(session))
    if path == "/slow-login":
        name = params.get("gate", "")
        session.get("user")
        SLOW_LOADED[name].set()
        SLOW_GATE[name].wait(10)
        session.regenerate()
        session["user"] = params.get("user", "mallory")
        return _json(dict(session))
    if path == "/peek":
        name = params.get("gate", "")
        value = session.get("a")
        SLOW_LOADED[name].set()
        SLOW_GATE[name].wait(10)
        return _json({"a": value})
    if path == "/cart":
        session.setdefault("cart", [])
        session["cart"].append(params.get("item", "x"))
        return _json(session["cart"])
    if path == "/flash":
        session.flash(params.get("m", "hi"))
        return Response("ok")
    if path == "/flashes":
        return _json(session.pop_flash())
    if path == "/incr":
        return _json(session.increment(params.get("k", "n")))
    if path == "/remember":
        seconds = params.get("s")
        session.set_expiry(int(seconds) if seconds else None)
        session["remember"] = True
        return Response("ok")
    if path == "/dump":
        return _json({"id": session.id, "new": session.is_new, "data": dict(session)})
    if path == "/error500":
        session["failed"] = True
        return Response("nope", status=500)
    return Response("not found", status=404)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The plain WSGI application under test."""
    request = Request(environ)
    response = view(request, environ["wsgisession"])
    return response(environ, start_response)


def late_start_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterator[bytes]:
    """An application that sets a key, then calls start_response only when iterated."""
    session = environ["wsgisession"]
    session["late"] = "yes"
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"late "
    yield b"body"


def wrap(
    store: Store, target: Callable[..., Any] = app, **options: Any
) -> tuple[SessionMiddleware, CountingStore]:
    """Wrap *target* in the middleware over a counting view of *store*."""
    counting = CountingStore(store)
    return SessionMiddleware(target, store=counting, **options), counting


class OutageStore(CountingStore):
    """Wraps a store; while ``down`` is set every call fails as when its server went away."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("the session server did not answer in 2.0 s")

    def load(self, key: str, now: float) -> Record | None:
        self._check()
        return super().load(key, now)

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        self._check()
        return super().create(key, data, meta, expires, now, replaces)

    def save(self, key: str, changes: Changes, now: float) -> bool:
        self._check()
        return super().save(key, changes, now)
