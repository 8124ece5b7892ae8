"""The sans-I/O core: a request's session life from a Cookie header to the headers to send."""

from __future__ import annotations

import logging
import time
from http.cookies import SimpleCookie
from typing import Any

import pytest
import webtest

from tests.support.app import OutageStore, app, wrap
from tests.support.clients import session_cookie, set_cookies
from wsgisession import (
    ConfigurationError,
    CookieStore,
    MemoryStore,
    Session,
    SessionMiddleware,
    Store,
    StoreUnavailableError,
)
from wsgisession.cookies import path_matches
from wsgisession.core import Exchange, Outcome, SessionCore
from wsgisession.records import Changes, Record
from wsgisession.signing import hash_id, new_id

KEY, OLD_KEY = "core-new-key", "core-old-key"
HTML = [("Content-Type", "text/html")]


def _cookie_header(outcome: Outcome, name: str = "wsgisession") -> str:
    """The Cookie header a browser sends back after *outcome*'s Set-Cookie."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(outcome.set_cookies[0])
    return f"{name}={jar[name].value}"


def test_a_request_from_header_to_headers() -> None:
    """begin() → session → finish() gives the Set-Cookie, Vary and Cache-Control to send."""
    core = SessionCore(MemoryStore())
    exchange = core.begin(None, False)
    exchange.session["user"] = "ann"
    outcome = exchange.finish(200, HTML)
    assert not outcome.unavailable
    assert len(outcome.set_cookies) == 1 and outcome.cookie_value is not None
    assert outcome.cookie_max_age == 1209600 and not outcome.cookie_expired
    assert ("Vary", "Cookie") in outcome.headers
    assert ("Cache-Control", "private") in outcome.headers
    assert ("Set-Cookie", outcome.set_cookies[0]) in outcome.headers
    assert outcome.headers[0] == HTML[0]

    again = core.begin(_cookie_header(outcome), False)
    assert again.session["user"] == "ann"
    assert not again.session.is_new
    quiet = again.finish(200, HTML)
    assert quiet.set_cookies == [] and quiet.cookie_value is None
    assert ("Vary", "Cookie") in quiet.headers


def test_close_lets_go_of_the_session_which_keeps_working() -> None:
    """close() after finish() breaks the exchange <-> session cycle; the session, still held
    by the front end, reads (and, not loaded yet, loads) as before; a second close() is no-op."""
    import gc

    core = SessionCore(MemoryStore())
    first = core.begin(None, False)
    first.session["user"] = "ann"
    cookie = _cookie_header(first.finish(200, HTML))
    gc.collect()
    gc.disable()
    try:
        exchange = core.begin(cookie, False)
        session = exchange.session
        exchange.close()
        exchange.close()
        assert not hasattr(exchange, "session")
        assert session["user"] == "ann"  # loaded only now, through the exchange
        del exchange, session
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_an_untouched_session_changes_nothing() -> None:
    """A request that never uses its session gets its headers back as they were."""
    store = MemoryStore()
    core = SessionCore(store)
    outcome = core.begin("wsgisession=" + "x" * 43, False).finish(200, HTML)
    assert outcome.headers == HTML and outcome.set_cookies == []
    assert len(store) == 0


def test_begin_value_takes_a_cookie_the_framework_parsed() -> None:
    """begin_value() starts from the cookie's value, for front ends that parse cookies."""
    core = SessionCore(MemoryStore(), secret_keys=KEY)
    first = core.begin_value(None, True)
    first.session["n"] = 1
    outcome = first.finish(200, [])
    assert outcome.cookie_value is not None and "secure" in outcome.set_cookies[0]
    second = core.begin_value(outcome.cookie_value, True)
    assert second.session["n"] == 1
    assert core.begin_value("forged", True).session.get("n") is None


def test_session_class_is_what_the_core_hands_out() -> None:
    """session_class= makes every request's session an instance of that class."""

    class Custom(Session):
        __slots__ = ()

    core = SessionCore(MemoryStore(), Custom)
    assert type(core.begin(None, False).session) is Custom
    with pytest.raises(ValueError, match="session_class"):
        SessionCore(MemoryStore(), dict)  # type: ignore[arg-type]


def test_destroy_expires_the_cookie() -> None:
    """A destroyed session's outcome expires the cookie and its record is gone."""
    store = MemoryStore()
    core = SessionCore(store)
    created = core.begin(None, False)
    created.session["a"] = 1
    header = _cookie_header(created.finish(200, []))
    exchange = core.begin(header, False)
    exchange.session.destroy()
    outcome = exchange.finish(200, [])
    assert outcome.cookie_expired and outcome.cookie_max_age == 0
    assert outcome.cookie_value is None and "Max-Age=0" in outcome.set_cookies[0]
    assert len(store) == 0


def test_a_failed_request_saves_nothing() -> None:
    """failed=True, an exception or a 5xx status: nothing is written and no cookie goes out."""
    store = MemoryStore()
    core = SessionCore(store)
    for kwargs, status in (({"failed": True}, 200), ({"error": RuntimeError()}, 200), ({}, 503)):
        exchange = core.begin(None, False)
        exchange.session["a"] = 1
        outcome = exchange.finish(status, [], **kwargs)  # type: ignore[arg-type]
        assert outcome.set_cookies == [] and not outcome.unavailable
    assert len(store) == 0


def test_a_store_failure_never_raises_from_finish(caplog: pytest.LogCaptureFixture) -> None:
    """finish() turns a store failure into outcome.unavailable, logged once, and the 503."""
    flaky = OutageStore(MemoryStore())
    core = SessionCore(flaky, retry_after=7)
    flaky.down = True
    exchange = core.begin(None, False)
    exchange.session["a"] = 1
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        outcome = exchange.finish(200, [])
        again = exchange.finish(200, [], error=StoreUnavailableError("down"))
    assert outcome.unavailable and again.unavailable
    assert len([r for r in caplog.records if r.name == "wsgisession"]) == 1
    status, headers, body = core.unavailable()
    assert status == 503 and ("Retry-After", "7") in headers and b"unavailable" in body


def test_continue_policy_serves_the_response_unsaved() -> None:
    """Under on_store_error='continue' a failed write leaves the response as it was, unsaved."""
    flaky = OutageStore(MemoryStore())
    core = SessionCore(flaky, on_store_error="continue")
    flaky.down = True
    exchange = core.begin(None, False)
    exchange.session["a"] = 1
    outcome = exchange.finish(200, HTML)
    assert not outcome.unavailable and outcome.set_cookies == []


def test_a_stale_signature_is_re_signed_on_the_next_write() -> None:
    """A cookie signed with an older key gets the newest signature when the session is written."""
    store = MemoryStore()
    old = SessionCore(store, secret_keys=[OLD_KEY])
    first = old.begin(None, False)
    first.session["a"] = 1
    old_value = first.finish(200, []).cookie_value
    assert old_value is not None
    rotated = SessionCore(store, secret_keys=[KEY, OLD_KEY])
    read_only = rotated.begin_value(old_value, False)
    assert read_only.session["a"] == 1
    assert read_only.finish(200, []).set_cookies == []  # nothing written, nothing re-sent
    writing = rotated.begin_value(old_value, False)
    writing.session["a"] = 2
    new_value = writing.finish(200, []).cookie_value
    assert new_value is not None and new_value != old_value
    assert new_value.split(".")[0] == old_value.split(".")[0]
    assert SessionCore(store, secret_keys=[KEY]).begin_value(new_value, False).session["a"] == 2


def test_the_store_key_is_hashed_once_per_request() -> None:
    """The id loaded at the start is written back under the same key, whatever other requests do."""
    store = MemoryStore()
    core = SessionCore(store)
    created = core.begin(None, False)
    created.session["a"] = 1
    value = created.finish(200, []).cookie_value
    assert value is not None
    one, two = core.begin_value(value, False), core.begin_value(value, False)
    one.session["a"] = 10
    two.session["b"] = 20
    assert one.finish(200, []).set_cookies == two.finish(200, []).set_cookies == []
    record = store.load(hash_id(value), core.clock())
    assert record is not None and record.data == {"a": 10, "b": 20}


def test_a_client_side_core_seals_the_session_into_the_cookie() -> None:
    """With a CookieStore the cookie value is the sealed session, and the server keeps nothing."""
    core = SessionCore(CookieStore(), secret_keys=KEY)
    exchange = core.begin(None, True)
    exchange.session["cart"] = ["apple"]
    outcome = exchange.finish(200, [])
    assert outcome.cookie_value is not None and "apple" not in outcome.cookie_value
    again = core.begin(_cookie_header(outcome), True)
    assert again.session["cart"] == ["apple"]


def test_exchanges_are_per_request_objects() -> None:
    """Each begin() gives its own Exchange and Session; the core keeps no request's state."""
    core = SessionCore(MemoryStore())
    one, two = core.begin(None, False), core.begin(None, False)
    assert isinstance(one, Exchange) and one is not two and one.session is not two.session
    before = dict(vars(core))
    one.session["a"] = 1
    one.finish(200, [])
    assert vars(core) == before


def test_an_outcome_repr_shows_no_cookie_value() -> None:
    """The cookie value is a credential: an Outcome's repr (in a traceback, say) leaves it out."""
    core = SessionCore(MemoryStore(), secret_keys=KEY)
    exchange = core.begin(None, False)
    exchange.session["a"] = 1
    outcome = exchange.finish(200, [])
    assert outcome.cookie_value is not None
    assert outcome.cookie_value not in repr(outcome)
    assert outcome.cookie_value.split(".")[0] not in repr(outcome)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_after": -1}, "retry_after"),
        ({"clock": 5}, "clock"),
        ({"max_age": True}, "max_age"),
        ({"on_store_error": "ignore"}, "use 'error'"),
        ({"store": object()}, "not a wsgisession Store"),
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, object], message: str) -> None:
    """Each option is checked once, when the core is made, with a message that says what to do."""
    with pytest.raises(ValueError, match=message):
        SessionCore(**options)  # type: ignore[arg-type]


# Security hardening (issue 13): what the core decides ------------------------------------


def _login(store: Store, **options: Any) -> tuple[webtest.TestApp, str]:
    """A client whose session holds user=alice, and its cookie value."""
    middleware, _ = wrap(store, **options)
    client = webtest.TestApp(middleware)
    value = session_cookie(client.get("/set?user=alice"))
    assert value is not None
    return client, value


@pytest.mark.parametrize("planted_first", [True, False])
def test_a_planted_cookie_with_no_record_does_not_log_the_victim_out(
    store: Store, planted_first: bool
) -> None:
    """13.7: without secret_keys, a tossed never-issued id beside the real cookie is dropped."""
    client, victim = _login(store)
    planted = new_id()
    pair = [planted, victim] if planted_first else [victim, planted]
    header = "; ".join(f"wsgisession={value}" for value in pair)
    response = webtest.TestApp(client.app).get("/get?user=", headers={"Cookie": header})
    assert response.json == {"user": "alice"}
    assert store.load(hash_id(planted), 2e9) is None


def test_planted_cookie_lookups_are_bounded(store: Store) -> None:
    """13.7: at most three ids are looked up per request; more is a fresh session, unread."""
    middleware, counting = wrap(store)
    victim = session_cookie(webtest.TestApp(middleware).get("/set?user=alice"))
    fresh = webtest.TestApp(middleware)
    for planted, loads, user in ((2, 3, "alice"), (3, 0, None), (20, 0, None)):
        header = "; ".join(
            f"wsgisession={v}" for v in [*(new_id() for _ in range(planted)), victim]
        )
        counting.reset()
        assert fresh.get("/get?user=", headers={"Cookie": header}).json == {"user": user}
        assert counting.calls.count("load") == loads


def test_the_tossing_warning_is_rate_limited(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """13.7: a hostile client planting cookies on every request costs one WARNING a minute."""
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    client, victim = _login(MemoryStore())
    header = f"wsgisession={new_id()}; wsgisession={victim}"
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        for _ in range(20):
            webtest.TestApp(client.app).get("/get?user=", headers={"Cookie": header})
        assert len(caplog.records) == 1
        assert "__Host-" in caplog.text and victim not in caplog.text
        clock[0] += 61
        webtest.TestApp(client.app).get("/get?user=", headers={"Cookie": header})
    assert len(caplog.records) == 2
    assert "19 more like it" in caplog.records[1].getMessage()


@pytest.mark.parametrize("name", ["__host-sid", "__HOST-sid", "__Host-sid", "__hOsT-sid"])
def test_host_prefix_is_checked_in_any_case(name: str) -> None:
    """13.7: browsers match __Host- in any case, so every spelling must be Secure, Path=/."""
    with pytest.raises(ConfigurationError, match="needs cookie_secure=True"):
        SessionCore(cookie_name=name)
    with pytest.raises(ConfigurationError, match="cookie_domain"):
        SessionCore(cookie_name=name, cookie_secure=True, cookie_domain="example.com")
    with pytest.raises(ConfigurationError, match="cookie_path"):
        SessionCore(cookie_name=name, cookie_secure=True, cookie_path="/app")
    assert SessionCore(cookie_name=name, cookie_secure=True).cookie.name == name


@pytest.mark.parametrize("name", ["__secure-sid", "__SECURE-sid", "__Secure-sid"])
def test_secure_prefix_is_checked_in_any_case(name: str) -> None:
    """13.7: every spelling of __Secure- needs cookie_secure=True."""
    with pytest.raises(ConfigurationError, match="needs cookie_secure=True"):
        SessionCore(cookie_name=name)
    assert SessionCore(cookie_name=name, cookie_secure=True).cookie.name == name


def _caching_app(cache_control: str) -> Any:
    def view(environ: Any, start_response: Any) -> Any:
        environ["wsgisession"]["a"] = 1
        start_response("200 OK", [("Content-Type", "text/plain"), ("Cache-Control", cache_control)])
        return [b"ok"]

    return view


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("public, max-age=600", "private, max-age=600"),
        ("max-age=60, s-maxage=600", "private, max-age=60"),
        ("max-age=60", "private, max-age=60"),
        ("public", "private"),
        (
            'no-store, public, no-cache="Set-Cookie, X"',
            'private, no-store, no-cache="Set-Cookie, X"',
        ),
    ],
)
def test_a_cookie_never_goes_out_under_a_shared_cache_directive(given: str, sent: str) -> None:
    """13.8: a response that sets the session cookie is made private, whatever the app said."""
    response = webtest.TestApp(SessionMiddleware(_caching_app(given))).get("/")
    assert session_cookie(response)
    assert response.headers.getall("Cache-Control") == [sent]


def test_the_cache_rewrite_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """13.8: the first rewritten directive is logged with the reason, later ones are not."""
    client = webtest.TestApp(SessionMiddleware(_caching_app("public, max-age=600")))
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        for _ in range(3):
            webtest.TestApp(client.app).get("/")
    assert len(caplog.records) == 1
    assert "shared cache" in caplog.text and "public, max-age=600" in caplog.text


def test_a_public_response_without_a_cookie_is_left_alone(store: Store) -> None:
    """13.8: only a response that sets the cookie is rewritten; a read-only one keeps public."""
    _, value = _login(store)

    def reader(environ: Any, start_response: Any) -> Any:
        environ["wsgisession"].get("user")
        start_response("200 OK", [("Cache-Control", "public, max-age=60")])
        return [b"ok"]

    response = webtest.TestApp(SessionMiddleware(reader, store=store)).get(
        "/", headers={"Cookie": f"wsgisession={value}"}
    )
    assert set_cookies(response) == []
    assert response.headers["Cache-Control"] == "public, max-age=60"
    assert response.headers["Vary"] == "Cookie"


def test_no_record_is_created_outside_cookie_path(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """13.9: a session started where the browser would never send its cookie is not saved."""
    middleware, counting = wrap(store, cookie_path="/app")
    outside = webtest.TestApp(middleware)
    with caplog.at_level(logging.WARNING, logger="wsgisession"):
        for _ in range(3):
            response = outside.get("/set?a=1")
            assert set_cookies(response) == []
    assert counting.writes == []
    assert len([r for r in caplog.records if "cookie_path" in r.getMessage()]) == 1
    inside = webtest.TestApp(middleware, extra_environ={"SCRIPT_NAME": "/app"})
    response = inside.get("/set?a=1")
    assert session_cookie(response, "wsgisession") and counting.writes == ["create"]
    assert inside.get("/get?a=").json == {"a": "1"}


@pytest.mark.parametrize(
    ("request_path", "cookie_path", "sent"),
    [
        ("/app", "/app", True),
        ("/app/", "/app", True),
        ("/app/x/y", "/app", True),
        ("/apple", "/app", False),
        ("/", "/app", False),
        ("/ap", "/app", False),
        ("/app/x", "/app/", True),
        ("/app", "/app/", False),
        ("/anything", "/", True),
    ],
)
def test_path_matching_follows_rfc_6265(request_path: str, cookie_path: str, sent: bool) -> None:
    """13.9: the core judges a path the way browsers decide to send a cookie."""
    assert path_matches(request_path, cookie_path) is sent


class _LogoutRace(Store):
    """A store where a logout in another request always lands just before a regenerate's move."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = MemoryStore()

    def load(self, key: str, now: float) -> Record | None:
        return self.inner.load(key, now)

    def create(self, key, data, meta, expires, now, replaces=None):  # type: ignore[no-untyped-def]
        if replaces is not None:
            self.inner.delete(replaces)  # the other request's destroy()
            return False  # the move is refused: the old session is no longer alive
        self.inner.create(key, data, meta, expires, now)
        return True

    def save(self, key: str, changes: Changes, now: float) -> bool:
        return self.inner.save(key, changes, now)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def purge(self, now: float, progress: Any = None) -> int:
        return self.inner.purge(now)


def test_a_refused_move_sends_no_cookie_and_creates_no_session() -> None:
    """13.1: when create(replaces=old) refuses (old ended meanwhile), no session, no Set-Cookie."""
    store = _LogoutRace()
    client = webtest.TestApp(SessionMiddleware(app, store=store))
    client.get("/set?user=alice")
    old = client.cookies["wsgisession"]
    response = client.get("/login?user=alice")
    assert set_cookies(response) == []
    assert len(store.inner) == 0
    assert client.cookies["wsgisession"] == old
    assert client.get("/get?user=").json == {"user": None}
