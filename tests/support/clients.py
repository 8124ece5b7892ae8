"""Small helpers for reading what the middleware sent back."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import webtest

from tests.support.app import wrap
from wsgisession import Session, SessionMiddleware, Store
from wsgisession.testing import CountingStore


def set_cookies(response: webtest.TestResponse) -> list[str]:
    """Every Set-Cookie header of *response*."""
    return list(response.headers.getall("Set-Cookie"))


def session_cookie(response: webtest.TestResponse, name: str = "wsgisession") -> str | None:
    """The value the response gives the session cookie, or None when it sets none."""
    for header in set_cookies(response):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar[name].value
    return None


def cookie_attributes(response: webtest.TestResponse, name: str = "wsgisession") -> dict[str, str]:
    """The attributes of the session cookie, lower-cased names, e.g. {'httponly': '', ...}."""
    for header in set_cookies(response):
        first, *rest = [part.strip() for part in header.split(";")]
        if first.split("=", 1)[0] != name:
            continue
        attributes = {}
        for part in rest:
            key, _, value = part.partition("=")
            attributes[key.lower()] = value
        return attributes
    raise AssertionError(f"no {name} cookie in {set_cookies(response)}")


#: Secret keys, newest first, for tests of signed cookies.
KEYS = ["new-secret-key", "old-secret-key"]


def signed_client(store: Store, keys: list[str] | str = KEYS[0]) -> tuple[webtest.TestApp, object]:
    """A webtest client of the test app whose session cookie is signed with *keys*."""
    middleware, counting = wrap(store, secret_keys=keys)
    return webtest.TestApp(middleware), counting


def client(app: object, **kwargs: object) -> webtest.TestApp:
    """A webtest client with a cookie jar."""
    return webtest.TestApp(app, **kwargs)


class SessionClient:
    """One browser of a middleware over a counting view of *store*: each ``run`` is a request.

    ``run(view)`` calls *view* with the request's session and returns what it returned and
    the response; ``store.writes`` then lists the store writes that request made.
    """

    def __init__(self, store: Store, **options: Any) -> None:
        self.store = CountingStore(store)
        self._view: Callable[[Session], Any] = lambda session: None
        self._result: Any = None

        def app(environ: Any, start_response: Any) -> list[bytes]:
            self._result = self._view(environ["wsgisession"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        #: The middleware under test.
        self.middleware = SessionMiddleware(app, store=self.store, **options)
        #: The webtest client, with its cookie jar.
        self.client = webtest.TestApp(self.middleware)

    def run(self, view: Callable[[Session], Any]) -> tuple[Any, webtest.TestResponse]:
        """Run *view* in one request carrying the client's cookies; count its store calls."""
        self._view = view
        self._result = None
        self.store.reset()
        response = self.client.get("/")
        return self._result, response

    def data(self) -> dict[str, Any]:
        """The session's data as a fresh request reads it."""
        result, _ = self.run(lambda session: dict(session))
        return dict(result)
