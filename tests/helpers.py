"""Small helpers for reading what the middleware sent back."""

from __future__ import annotations

from http.cookies import SimpleCookie

import webtest


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


def client(app: object, **kwargs: object) -> webtest.TestApp:
    """A webtest client with a cookie jar."""
    return webtest.TestApp(app, **kwargs)
