"""Session expiry: ``created_at``, ``expires_at`` and ``set_expiry()`` with every kind of value."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import Clock
from tests.support.clients import SessionClient, cookie_attributes, session_cookie
from wsgisession import ConfigurationError, ConfigurationTypeError, Session, Store
from wsgisession.session import SessionContext

DAY = 86400


def _at(seconds: float) -> datetime:
    """*seconds* since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, timezone.utc)


def _detached(now: float = 1_800_000_000.0) -> Session:
    return Session(SessionContext(clock=lambda: now, new_id=lambda: "i" * 43))


# created_at and expires_at -----------------------------------------------------------------


def test_no_times_until_the_session_exists(store: Store) -> None:
    """A session with no id has no created_at nor expires_at; nor has one after destroy()."""
    browser = SessionClient(store)
    times, response = browser.run(lambda s: (s.created_at, s.expires_at))
    assert times == (None, None)
    assert session_cookie(response) is None and not browser.store.writes
    browser.run(lambda s: s.set("a", 1))
    times, _ = browser.run(lambda s: (s.destroy(), s.created_at, s.expires_at))
    assert times == (None, None, None)


def test_times_are_aware_utc_datetimes(store: Store, clock: Clock) -> None:
    """A new session is created now and, by default, ends max_age after now."""
    browser = SessionClient(store, clock=clock, max_age=3600)
    (created, expires), _ = browser.run(lambda s: (s.set("a", 1), s.created_at, s.expires_at)[1:])
    assert created == _at(clock.now) and created.tzinfo is timezone.utc
    assert expires == _at(clock.now + 3600) and expires.tzinfo is timezone.utc


def test_created_at_is_stored_and_survives_regenerate(store: Store, clock: Clock) -> None:
    """created_at asked before the save is the one stored; regenerate() keeps it (login)."""
    browser = SessionClient(store, clock=clock)
    start = clock.now

    def first(session: Session) -> datetime | None:
        session["a"] = 1
        created = session.created_at
        clock.advance(5)  # the save comes later in the request: the asked moment holds
        return created

    created, _ = browser.run(first)
    assert created == _at(start)
    clock.advance(100)
    assert browser.run(lambda s: s.created_at)[0] == _at(start)
    login, response = browser.run(lambda s: (s.regenerate(), s.created_at)[1])
    assert login == _at(start) and session_cookie(response)
    clock.advance(100)
    assert browser.run(lambda s: s.created_at)[0] == _at(start)


def test_expires_at_is_the_stored_end_until_a_refresh_is_due(store: Store, clock: Clock) -> None:
    """Reads within touch_interval do not move the stored end, and expires_at says so."""
    browser = SessionClient(store, clock=clock, max_age=1000, touch_interval=100)
    start = clock.now
    browser.run(lambda s: s.set("a", 1))
    clock.advance(50)
    expires, response = browser.run(lambda s: s.expires_at)
    assert expires == _at(start + 1000) and session_cookie(response) is None
    clock.advance(100)
    expires, response = browser.run(lambda s: s.expires_at)
    assert expires == _at(clock.now + 1000) and session_cookie(response)
    assert int(cookie_attributes(response)["max-age"]) == 1000


def test_expires_at_of_a_browser_session_cookie_is_the_server_end(
    store: Store, clock: Clock
) -> None:
    """set_expiry(None): no Max-Age on the cookie, but the server still ends it after max_age."""
    browser = SessionClient(store, clock=clock, max_age=600)
    expires, response = browser.run(lambda s: (s.set_expiry(None), s.set("a", 1), s.expires_at)[2])
    assert "max-age" not in cookie_attributes(response)
    assert expires == _at(clock.now + 600)
    clock.advance(601)
    assert browser.data() == {}


def test_expires_at_is_capped_by_absolute_timeout(store: Store, clock: Clock) -> None:
    """expires_at never passes the absolute deadline."""
    browser = SessionClient(store, clock=clock, max_age=1000, absolute_timeout=1500)
    start = clock.now
    browser.run(lambda s: s.set("a", 1))
    clock.advance(900)
    expires, _ = browser.run(lambda s: s.expires_at)
    assert expires == _at(start + 1500)


# set_expiry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("expiry", [30 * DAY, timedelta(days=30), timedelta(days=30, seconds=0.9)])
def test_seconds_and_timedelta_are_the_same_idle_timeout(
    store: Store, clock: Clock, expiry: int | timedelta
) -> None:
    """set_expiry(timedelta(days=30)) is set_expiry(2592000): 30 idle days, sliding."""
    browser = SessionClient(store, clock=clock, max_age=3600)
    _, response = browser.run(lambda s: (s.set("a", 1), s.set_expiry(expiry)))
    assert int(cookie_attributes(response)["max-age"]) == 30 * DAY
    clock.advance(20 * DAY)
    assert browser.data() == {"a": 1}  # well past max_age, within its own timeout
    clock.advance(20 * DAY)
    assert browser.data() == {"a": 1}  # the read above slid it on
    clock.advance(31 * DAY)
    assert browser.data() == {}


def test_a_datetime_is_a_fixed_end(store: Store, clock: Clock) -> None:
    """set_expiry(datetime): the session ends then however active; Max-Age counts down to it."""
    browser = SessionClient(store, clock=clock, max_age=3600)
    end = clock.now + 5000
    expires, response = browser.run(
        lambda s: (s.set("a", 1), s.set_expiry(_at(end)), s.expires_at)[2]
    )
    assert expires == _at(end)
    assert int(cookie_attributes(response)["max-age"]) == 5000
    for _ in range(4):
        clock.advance(1000)
        (data, expires), response = browser.run(lambda s: (dict(s), s.expires_at))
        assert data == {"a": 1} and expires == _at(end)
        assert session_cookie(response) is None  # nothing to refresh: the end is fixed
    clock.advance(1001)
    assert browser.data() == {}


def test_an_aware_datetime_in_any_zone_is_the_same_moment(clock: Clock) -> None:
    """A datetime with a +05:00 offset ends the session at that instant, shown in UTC."""
    session = _detached(clock.now)
    moment = _at(clock.now + DAY).astimezone(timezone(timedelta(hours=5)))
    session.set_expiry(moment)
    assert session.expires_at == moment and session.expires_at.tzinfo is timezone.utc


def test_absolute_timeout_caps_a_fixed_end(store: Store, clock: Clock) -> None:
    """A fixed end later than the absolute deadline ends at the deadline."""
    browser = SessionClient(store, clock=clock, absolute_timeout=1000)
    start = clock.now
    _, response = browser.run(lambda s: (s.set("a", 1), s.set_expiry(_at(start + 10 * DAY))))
    assert int(cookie_attributes(response)["max-age"]) == 1000
    clock.advance(1001)
    assert browser.data() == {}


def test_each_call_replaces_the_previous_choice(store: Store, clock: Clock) -> None:
    """A fixed end, then seconds: the idle timeout again, sliding; then None: a browser cookie."""
    browser = SessionClient(store, clock=clock, max_age=3600)
    browser.run(lambda s: (s.set("a", 1), s.set_expiry(_at(clock.now + 100))))
    _, response = browser.run(lambda s: s.set_expiry(7200))
    assert int(cookie_attributes(response)["max-age"]) == 7200
    clock.advance(5000)
    assert browser.data() == {"a": 1}
    _, response = browser.run(lambda s: s.set_expiry(None))
    assert "max-age" not in cookie_attributes(response)


@pytest.mark.parametrize(
    ("expiry", "message"),
    [
        (datetime(2030, 1, 1), "naive datetime, which could be local time or UTC; give an aware"),
        (_at(1_800_000_000.0 - 1), "is not in the future"),
        (_at(1_800_000_000.0), "is not in the future"),
        (timedelta(0), "not a positive idle timeout"),
        (timedelta(seconds=-5), "not a positive idle timeout"),
        (timedelta(milliseconds=500), "not a positive idle timeout"),
        (0, "not a positive idle timeout"),
        (-1, "not a positive idle timeout"),
    ],
)
def test_bad_expiry_is_refused_and_the_session_left_alone(expiry: object, message: str) -> None:
    """A naive or past datetime, or a timeout not positive: ConfigurationError, no change."""
    session = _detached()
    session["a"] = 1
    before = dict(session._meta)
    with pytest.raises(ConfigurationError, match=message):
        session.set_expiry(expiry)  # type: ignore[arg-type]
    assert session._meta == before and not session._meta_dirty


@pytest.mark.parametrize("expiry", [1.5, "10", True, datetime.now(timezone.utc).date()])
def test_expiry_of_the_wrong_type_says_what_is_accepted(expiry: object) -> None:
    """set_expiry('10') is a ConfigurationTypeError naming the type and every accepted kind."""
    with pytest.raises(ConfigurationTypeError, match="seconds \\(an int\\) or a timedelta") as info:
        _detached().set_expiry(expiry)  # type: ignore[arg-type]
    assert "aware datetime" in str(info.value) and "None" in str(info.value)
