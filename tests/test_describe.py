"""The ``describe`` hook: what a user's session list may say about each client, and only then.

``SessionMiddleware(describe=...)`` is called with the request's environ when a request binds
its session to a user; its dict is kept as the session's ``info``. Without it, or for a
session bound to no user, nothing about the client is stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from webob import Request, Response

import wsgisession
from tests.support.clients import session_cookie
from wsgisession import ConfigurationError, MemoryStore, Session, SessionMiddleware
from wsgisession.errors import ConfigurationTypeError
from wsgisession.records import INFO
from wsgisession.signing import hash_id

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment


def view(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """/login?u= (regenerate, bind) · /anon?k=v (a session bound to no one) · /mine (the list)."""
    request = Request(environ)
    session: Session = environ["wsgisession"]
    if request.path_info == "/login":
        session.regenerate()
        session.set_user(request.GET["u"])
        body: Any = "welcome"
    elif request.path_info == "/anon":
        session.update(request.GET)
        body = "ok"
    else:
        body = [{"current": s.current, "info": s.info} for s in session.user_sessions()]
    response = Response(json.dumps(body), content_type="application/json", charset="utf-8")
    return response(environ, start_response)


class Describer:
    """A describe hook that keeps the user agent and remembers what it was called with."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, environ: Mapping[str, Any]) -> dict[str, str]:
        self.calls.append(str(environ["PATH_INFO"]))
        return {"agent": str(environ.get("HTTP_USER_AGENT", ""))}


def browser(app: SessionMiddleware, agent: str) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_USER_AGENT": agent})


def stored_meta(store: MemoryStore, response: webtest.TestResponse) -> dict[str, Any]:
    """The meta of the record the response's session cookie names."""
    cookie = session_cookie(response)
    assert cookie is not None
    record = store.load(hash_id(cookie), time.time())
    assert record is not None
    return dict(record.meta)


def test_describe_keeps_its_answer_with_a_bound_session() -> None:
    """The hook's dict is the session's info, in user_sessions() and in the request's own list."""
    store, describe = MemoryStore(), Describer()
    app = SessionMiddleware(view, store, describe=describe)
    laptop, phone = browser(app, "Laptop/1"), browser(app, "Phone/2")
    laptop.get("/login?u=alice")
    phone.get("/login?u=alice")
    assert describe.calls == ["/login", "/login"]  # with the environ of the binding request
    infos = sorted(info.info["agent"] for info in wsgisession.user_sessions(store, "alice"))
    assert infos == ["Laptop/1", "Phone/2"]
    mine = laptop.get("/mine").json
    assert {"current": True, "info": {"agent": "Laptop/1"}} in mine
    assert {"current": False, "info": {"agent": "Phone/2"}} in mine
    assert describe.calls == ["/login", "/login"]  # reading the list describes nothing


def test_without_describe_nothing_about_the_client_is_stored() -> None:
    """No describe option: the session's info is empty and its record holds no info at all."""
    store = MemoryStore()
    app = SessionMiddleware(view, store)
    response = browser(app, "Laptop/1").get("/login?u=alice")
    assert INFO not in stored_meta(store, response)
    (info,) = wsgisession.user_sessions(store, "alice")
    assert info.info == {}
    record = store.load(hash_id(str(session_cookie(response))), time.time())
    assert record is not None and "Laptop" not in json.dumps([record.data, record.meta])


def test_describe_is_not_asked_for_sessions_bound_to_no_user() -> None:
    """An anonymous session never calls the hook and keeps nothing about its client."""
    store, describe = MemoryStore(), Describer()
    app = SessionMiddleware(view, store, describe=describe)
    response = browser(app, "Crawler/9").get("/anon?k=v")
    assert describe.calls == []
    assert INFO not in stored_meta(store, response)


def test_describe_returning_none_stores_nothing() -> None:
    """A hook may decline (None, or an empty dict): the bound session keeps no info."""
    store = MemoryStore()
    for answer in (None, {}):
        app = SessionMiddleware(view, store, describe=lambda environ, a=answer: a)
        response = browser(app, "Laptop/1").get("/login?u=bob")
        assert INFO not in stored_meta(store, response)
    assert [info.info for info in wsgisession.user_sessions(store, "bob")] == [{}, {}]


def test_describe_must_be_callable_at_construction() -> None:
    """A describe that is not callable fails when the middleware is built, saying what it takes."""
    with pytest.raises(ConfigurationTypeError, match="callable taking the request's WSGI"):
        SessionMiddleware(view, describe={"agent": "x"})  # type: ignore[arg-type]
    assert issubclass(ConfigurationTypeError, ConfigurationError)


def test_describe_returning_something_else_than_a_dict_is_a_clear_error() -> None:
    """A hook that answers a str (not a dict) raises at the binding, naming what it must return."""
    app = SessionMiddleware(view, MemoryStore(), describe=lambda environ: "Laptop")
    with pytest.raises(ConfigurationTypeError, match="must return a dict of JSON values"):
        browser(app, "Laptop/1").get("/login?u=alice")
