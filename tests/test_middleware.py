"""SessionMiddleware: options, cookie attributes, store calls per request, caching headers."""

from __future__ import annotations

import pytest
import webtest

from tests.conftest import Clock
from tests.support.app import late_start_app, wrap
from tests.support.clients import cookie_attributes, session_cookie, set_cookies
from wsgisession import (
    ConfigurationError,
    MemoryStore,
    SessionError,
    SessionMiddleware,
    SessionNotInstalledError,
    Store,
    get_session,
)

# Construction -------------------------------------------------------------------------------


def _noop_app(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("200 OK", [])
    return [b""]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cookie_samesite": "Sometimes"}, "unknown; use 'Strict', 'Lax' or 'None'"),
        ({"cookie_samesite": "None"}, "needs cookie_secure=True"),
        ({"cookie_name": "__Host-s"}, "needs cookie_secure=True"),
        (
            {"cookie_name": "__Host-s", "cookie_secure": True, "cookie_domain": "a.example"},
            "domain",
        ),
        (
            {"cookie_name": "__Host-s", "cookie_secure": True, "cookie_path": "/app"},
            "cookie_path='/'",
        ),
        ({"secret_keys": ""}, "empty"),
        ({"secret_keys": ["new", ""]}, "secret_keys[1] is empty"),
        ({"max_age": 0}, "positive"),
        ({"max_age": -5}, "positive"),
        ({"on_store_error": "ignore"}, "use 'error'"),
        ({"absolute_timeout": 0}, "absolute_timeout"),
        ({"cookie_name": "bad name;"}, "not a valid cookie name"),
    ],
)
def test_bad_options_raise_at_construction(options: dict[str, object], message: str) -> None:
    """T07: impossible settings raise a ValueError (a SessionError) that says what to change."""
    with pytest.raises(
        ConfigurationError, match=message.replace("[", r"\[").replace("(", r"\(")
    ) as info:
        SessionMiddleware(_noop_app, **options)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, SessionError)


def test_a_host_prefixed_secure_cookie_is_accepted() -> None:
    """A __Host- name with Secure, no Domain and Path=/ is a valid configuration."""
    middleware = SessionMiddleware(_noop_app, cookie_name="__Host-sid", cookie_secure=True)
    assert middleware.cookie.name == "__Host-sid"


def test_store_defaults_to_memory() -> None:
    """Without a store the middleware keeps sessions in a per-process MemoryStore."""
    assert isinstance(SessionMiddleware(_noop_app).store, MemoryStore)


def test_a_non_store_is_rejected() -> None:
    """Passing something that is not a Store fails at construction with a hint."""
    with pytest.raises(ConfigurationError, match="not a wsgisession Store"):
        SessionMiddleware(_noop_app, store="sqlite:///x.db")  # type: ignore[arg-type]


def test_get_session_without_middleware_explains() -> None:
    """get_session() on a bare environ says to install the middleware."""
    with pytest.raises(
        SessionNotInstalledError, match="wrap the WSGI application with SessionMiddleware"
    ):
        get_session({})


def test_get_session_returns_the_request_session(store: Store) -> None:
    """get_session() finds the session the middleware put in the environ."""
    seen = []

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        seen.append(get_session(environ) is environ["wsgisession"])
        start_response("200 OK", [])
        return [b""]

    webtest.TestApp(SessionMiddleware(view, store=store)).get("/")
    assert seen == [True]


def test_custom_environ_key(store: Store) -> None:
    """environ_key moves the session to another environ key."""

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        get_session(environ, "my.session")["a"] = 1
        start_response("200 OK", [])
        return [b""]

    response = webtest.TestApp(SessionMiddleware(view, store=store, environ_key="my.session")).get(
        "/"
    )
    assert session_cookie(response)


# Lazy and frugal ------------------------------------------------------------------------------


def test_untouched_request_costs_nothing(store: Store) -> None:
    """T02: /noop without a cookie sends no Set-Cookie, no Vary, and makes no store call."""
    middleware, counting = wrap(store)
    response = webtest.TestApp(middleware).get("/noop")
    assert set_cookies(response) == []
    assert "Vary" not in response.headers
    assert counting.calls == []


def test_untouched_request_with_cookie_costs_nothing(store: Store) -> None:
    """A request with a valid cookie that never touches the session makes no store call."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    response = client.get("/noop")
    assert counting.calls == []
    assert set_cookies(response) == []


def test_new_session_is_one_store_call(store: Store) -> None:
    """Creating a session is a single store call (no load: there was no cookie)."""
    middleware, counting = wrap(store)
    response = webtest.TestApp(middleware).get("/set?a=1")
    assert counting.calls == ["create"]
    assert session_cookie(response)


def test_read_only_request_is_one_call_and_no_cookie(store: Store) -> None:
    """T09: a read of an unchanged session is one load, no write and no Set-Cookie."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    response = client.get("/get?a=")
    assert response.json == {"a": "1"}
    assert counting.calls == ["load"]
    assert set_cookies(response) == []


def test_read_and_change_is_two_calls(store: Store) -> None:
    """A request that reads and changes is one load and one save."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    client.get("/set?b=2")
    assert counting.calls == ["load", "save"]
    assert client.get("/get?a=&b=").json == {"a": "1", "b": "2"}


def test_setting_the_same_value_still_saves_but_sends_no_cookie(store: Store) -> None:
    """A changed key is saved, but the cookie is only re-sent when it must change."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    response = client.get("/set?a=2")
    assert counting.calls == ["create", "load", "save"]
    assert set_cookies(response) == []
    assert client.get("/get?a=").json == {"a": "2"}


def test_reading_unknown_cookie_creates_nothing(store: Store) -> None:
    """T12: a well-formed unknown id costs one load and creates no record and no cookie."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.set_cookie("wsgisession", "A" * 43)
    response = client.get("/get?a=")
    assert counting.calls == ["load"]
    assert set_cookies(response) == []


# Cookie attributes ----------------------------------------------------------------------------


def test_default_cookie_attributes_over_http(store: Store) -> None:
    """T03: HttpOnly, SameSite=Lax, Path=/, no Domain, no Secure over plain HTTP."""
    middleware, _ = wrap(store)
    attributes = cookie_attributes(webtest.TestApp(middleware).get("/set?a=1"))
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    assert "secure" not in attributes


def test_secure_follows_https(store: Store) -> None:
    """T04: over HTTPS (cookie_secure=None) the cookie is Secure."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get(
        "/set?a=1", extra_environ={"wsgi.url_scheme": "https"}
    )
    assert "secure" in cookie_attributes(response)


def test_forwarded_proto_is_not_trusted_by_default(store: Store) -> None:
    """T05: X-Forwarded-Proto: https over HTTP does not make the cookie Secure."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get("/set?a=1", headers={"X-Forwarded-Proto": "https"})
    assert "secure" not in cookie_attributes(response)


def test_forwarded_proto_is_trusted_when_asked(store: Store) -> None:
    """With trust_forwarded_proto=True a TLS proxy's X-Forwarded-Proto makes the cookie Secure."""
    middleware, _ = wrap(store, trust_forwarded_proto=True)
    response = webtest.TestApp(middleware).get("/set?a=1", headers={"X-Forwarded-Proto": "https"})
    assert "secure" in cookie_attributes(response)


def test_secure_cookie_is_never_sent_over_http(store: Store) -> None:
    """T06: cookie_secure=True over plain HTTP emits no Set-Cookie and stores nothing."""
    middleware, counting = wrap(store, cookie_secure=True)
    response = webtest.TestApp(middleware).get("/set?a=1")
    assert set_cookies(response) == []
    assert counting.writes == []


def test_custom_cookie_attributes(store: Store) -> None:
    """Name, path, domain, SameSite and HttpOnly follow the options."""
    middleware, _ = wrap(
        store,
        cookie_name="sid",
        cookie_path="/app",
        cookie_domain="example.com",
        cookie_samesite="strict",
        cookie_httponly=False,
    )
    mounted = webtest.TestApp(middleware, extra_environ={"SCRIPT_NAME": "/app"})  # under its path
    response = mounted.get("/set?a=1")
    attributes = cookie_attributes(response, "sid")
    assert attributes["path"] == "/app"
    assert attributes["domain"] == "example.com"
    assert attributes["samesite"].lower() == "strict"
    assert "httponly" not in attributes


def test_cookie_max_age_matches_server_idle_timeout(store: Store) -> None:
    """T10: the cookie's Max-Age is the idle timeout, never longer than the server keeps it."""
    middleware, _ = wrap(store, max_age=3600)
    attributes = cookie_attributes(webtest.TestApp(middleware).get("/set?a=1"))
    assert 0 < int(attributes["max-age"]) <= 3600


def test_cookie_max_age_capped_by_absolute_timeout(store: Store, clock: Clock) -> None:
    """T10: near the absolute deadline the cookie lives only as long as the session may."""
    middleware, _ = wrap(store, max_age=3600, absolute_timeout=5000, touch_interval=0, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    clock.advance(2000)
    client.get("/set?a=2")
    clock.advance(2000)
    attributes = cookie_attributes(client.get("/set?a=3"))
    assert int(attributes["max-age"]) <= 1000


def test_browser_session_cookie(store: Store) -> None:
    """T10: set_expiry(None) gives a cookie with no Max-Age or Expires."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get("/remember")
    attributes = cookie_attributes(response)
    assert "max-age" not in attributes
    assert "expires" not in attributes


def test_remember_me_extends_the_cookie(store: Store) -> None:
    """set_expiry(seconds) sets this session's own lifetime on the cookie."""
    middleware, _ = wrap(store, max_age=3600)
    response = webtest.TestApp(middleware).get("/remember?s=2592000")
    assert int(cookie_attributes(response)["max-age"]) == 2592000


# Caching headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/get?a=", "/has?a=", "/len", "/keys", "/set?a=1"])
def test_reading_the_session_adds_vary_cookie(store: Store, path: str) -> None:
    """T39: any response that read the session (get, in, len, iteration) has Vary: Cookie."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get(path)
    assert "cookie" in response.headers.get("Vary", "").lower()


def test_vary_is_merged_with_the_apps_own(store: Store) -> None:
    """An existing Vary header keeps its values and gains Cookie once."""

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        environ["wsgisession"].get("a")
        start_response("200 OK", [("Vary", "Accept-Encoding")])
        return [b""]

    response = webtest.TestApp(SessionMiddleware(view, store=store)).get("/")
    assert response.headers.getall("Vary") == ["Accept-Encoding, Cookie"]


def test_set_cookie_responses_are_private(store: Store) -> None:
    """T40: a response that sets the cookie carries Cache-Control: private."""
    middleware, _ = wrap(store)
    response = webtest.TestApp(middleware).get("/set?a=1")
    assert response.headers["Cache-Control"] == "private"


def test_the_apps_cache_control_is_kept(store: Store) -> None:
    """T40: when the app set its own Cache-Control it is left alone."""

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        environ["wsgisession"]["a"] = 1
        start_response("200 OK", [("Cache-Control", "no-store")])
        return [b""]

    response = webtest.TestApp(SessionMiddleware(view, store=store)).get("/")
    assert response.headers.getall("Cache-Control") == ["no-store"]
    assert session_cookie(response)


# When the save happens --------------------------------------------------------------------------


def test_save_works_when_start_response_comes_late(store: Store) -> None:
    """An app that calls start_response while its body is iterated still gets its session saved."""
    middleware, counting = wrap(store, late_start_app)
    response = webtest.TestApp(middleware).get("/")
    assert response.text == "late body"
    assert session_cookie(response)
    assert counting.calls == ["create"]


def test_exception_saves_nothing(store: Store) -> None:
    """T18: /boom raises; the exception propagates, nothing is stored, no Set-Cookie."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    with pytest.raises(RuntimeError, match="boom"):
        client.get("/boom")
    assert counting.writes == []
    assert client.get("/get?boom=&a=").json == {"boom": None, "a": "1"}


def test_server_error_response_saves_nothing(store: Store) -> None:
    """A 5xx answer (a framework that turned an exception into a response) saves nothing."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    response = client.get("/error500", status=500)
    assert set_cookies(response) == []
    assert counting.writes == []


def test_exc_info_start_response_saves_nothing(store: Store) -> None:
    """An app that reports an error through start_response(exc_info) saves nothing."""
    import sys

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        environ["wsgisession"]["a"] = 1
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("400 Bad Request", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"bad"]

    middleware = SessionMiddleware(view, store=store)
    response = webtest.TestApp(middleware, lint=False).get("/", status=400)
    assert set_cookies(response) == []


def test_start_response_called_again_after_an_error_keeps_the_first_save() -> None:
    """PEP 3333 lets an app call start_response again with exc_info before the body: the first
    call saved the session; the error page sends no cookie but still varies by Cookie."""
    import sys

    store = MemoryStore()

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        environ["wsgisession"]["a"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("failed while rendering")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"failed"]

    captured: list[tuple[str, list[tuple[str, str]]]] = []

    def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
        captured.append((status, headers))

    middleware = SessionMiddleware(view, store=store)
    middleware(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "http"}, start_response
    )
    (first_status, first), (second_status, second) = captured
    assert first_status == "200 OK" and second_status.startswith("500")
    assert any(name == "Set-Cookie" for name, _ in first)
    assert len(store) == 1  # saved by the first call
    assert not any(name == "Set-Cookie" for name, _ in second)
    assert ("Vary", "Cookie") in second


@pytest.mark.parametrize("describe", [None, lambda environ: {}])
def test_the_exchange_the_middleware_builds_is_the_one_the_core_builds(describe: object) -> None:
    """The middleware builds each request's exchange and session inline (two calls fewer on
    every request): they must hold exactly what core.begin() gives, slot by slot."""
    from wsgisession.core import Exchange
    from wsgisession.session import Session

    missing = object()
    seen: dict[str, dict[str, object]] = {}

    def slots(obj: object, cls: type) -> dict[str, object]:
        names = [n for c in cls.__mro__ for n in getattr(c, "__slots__", ()) if n != "__weakref__"]
        return {name: getattr(obj, name, missing) for name in names}

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        session = environ["wsgisession"]
        seen["exchange"] = slots(session._source, Exchange)
        seen["session"] = slots(session, Session)
        seen["exchange"]["session"] = type(seen["exchange"]["session"])
        start_response("200 OK", [])
        return [b""]

    middleware = SessionMiddleware(
        view,
        MemoryStore(),
        secret_keys="k" * 32,
        describe=describe,  # type: ignore[arg-type]
    )
    cookie = "wsgisession=abc; other=1"
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "wsgi.url_scheme": "https"}
    middleware({**environ, "HTTP_COOKIE": cookie}, lambda *args: None)
    reference = middleware.core.begin(cookie, True)
    expected = slots(reference, Exchange)
    expected["session"] = type(reference.session)
    if describe is not None:
        expected["client"] = seen["exchange"]["client"]  # the environ, for the describe hook
    assert seen["exchange"] == expected
    session = slots(reference.session, Session)
    session["_source"] = seen["session"]["_source"]  # each session holds its own exchange
    assert seen["session"] == session


@pytest.mark.parametrize("path", ["/untouched", "/read", "/write", "/new"])
def test_a_request_leaves_no_garbage_for_the_collector(path: str) -> None:
    """The session, its exchange and the loaded record are freed as the request ends, by
    reference counting: a cycle between them would keep every request's objects in memory
    until the garbage collector ran, under load a measurable cost."""
    import gc

    def view(environ, start_response):  # type: ignore[no-untyped-def]
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/read":
            session.get("n")
        elif environ["PATH_INFO"] in ("/write", "/new"):
            session["n"] = session.get("n", 0) + 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = SessionMiddleware(view, store=MemoryStore(), secret_keys="k" * 32)
    sent: list[tuple[str, str]] = []

    def start_response(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
        sent[:] = headers

    def request(request_path: str, cookie: str | None = None) -> None:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": request_path, "wsgi.url_scheme": "http"}
        if cookie is not None:
            environ["HTTP_COOKIE"] = cookie
        middleware(environ, start_response)

    request("/write")  # a session to read and write
    cookie = next(value for name, value in sent if name == "Set-Cookie").split(";")[0]
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            request(path, None if path == "/new" else cookie)
        assert gc.collect() == 0
    finally:
        gc.enable()
