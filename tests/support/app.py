"""The one test application: the routes the middleware tests drive, in process and served.

/set?k=v · /get?k= · /noop (never touches the session) · /login (regenerate, then user) ·
/logout (destroy) · /boom (sets a key, then raises) · /slow?gate= (loads, pauses, then sets a
key) · /slow-login?gate= (loads, pauses, then regenerates) · /peek?gate= (reads, then pauses) ·
/cart (appends to a nested list) · /flash?m= · /flashes · /incr?k=&hold= · /remember?s= · /dump ·
/rmw?k=&d=&last= (read-modify-write of a counter, plus a distinct key and a shared "last" key) ·
/own?me= · /write?v=&stall= · /bind?user= (log in, bound to the user) ·
/as-user?op=read|write|relogin (answers with the session's user id) · /revoke-others.

Where /slow, /slow-login and /peek pause is the caller's: in process they wait on the events of
SLOW_GATE and SLOW_LOADED (:func:`wait_on_events`); tests/support/served.py, which gunicorn
serves, passes its own pause that waits on files, and adds only what serving needs.
"""

from __future__ import annotations

import json
import threading
import time
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


def wait_on_events(name: str) -> None:
    """Say the request *name* has loaded its session, then wait (10 s at most) for its gate."""
    if name in SLOW_LOADED:
        SLOW_LOADED[name].set()
    gate = SLOW_GATE.get(name)
    if gate is not None:
        gate.wait(10)


def view(
    request: Request, session: Session, pause: Callable[[str], None] = wait_on_events
) -> Response:
    """Route one request; every route but /noop uses the session; *pause* holds /slow & co."""
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
        session.get("user")
        pause(params.get("gate", ""))
        session["slow"] = "done"
        return _json(dict(session))
    if path == "/slow-login":
        session.get("user")
        pause(params.get("gate", ""))
        session.regenerate()
        session["user"] = params.get("user", "mallory")
        return _json(dict(session))
    if path == "/peek":
        value = session.get("a")
        pause(params.get("gate", ""))
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
        value = session.increment(params.get("k", "n"))
        time.sleep(float(params.get("hold", 0)))  # keeps a served worker busy a while
        return _json(value)
    if path == "/rmw":
        key = params["k"]
        session[key] = session.get(key, 0) + 1
        if "d" in params:
            session[params["d"]] = 1
        if "last" in params:
            session["last"] = params["last"]
        return _json({key: session[key]})
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
        if params.get("stall"):
            session["stall"] = params["stall"]  # what a PostgreSQL test trigger looks for
        else:
            session.pop("stall", None)
        return _json(version)
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
