"""The sans-I/O core: a request's session life from a Cookie header to the headers to send."""

from __future__ import annotations

import logging
from http.cookies import SimpleCookie

import pytest

from tests.apps import OutageStore
from wsgisession import CookieStore, MemoryStore, Session, StoreUnavailableError
from wsgisession.core import Exchange, Outcome, SessionCore
from wsgisession.signing import hash_id

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
