"""Lifecycle: strict mode, fixation, login and logout, expiry, throttled refresh, races."""

from __future__ import annotations

import threading

import webtest

from tests.conftest import Clock
from tests.support.app import SLOW_GATE, SLOW_LOADED, wrap
from tests.support.clients import cookie_attributes, session_cookie, set_cookies
from wsgisession import Store
from wsgisession.signing import hash_id, new_id

# Strict mode and fixation -------------------------------------------------------------------


def test_unknown_id_is_never_adopted(store: Store) -> None:
    """T12: a well-formed unknown id gets a different id on write, and no record under it."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    forged = new_id()
    client.set_cookie("wsgisession", forged)
    response = client.get("/set?a=1")
    issued = session_cookie(response)
    assert issued and issued != forged
    assert store.load(hash_id(forged), middleware._now()) is None


def test_random_unknown_ids_do_not_grow_the_store(store: Store) -> None:
    """T13: 1,000 reads with random unknown ids leave the store as it was."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    now = middleware._now()
    try:
        before = store.stats(now).sessions
    except NotImplementedError:
        before = None
    for _ in range(1000):
        client.set_cookie("wsgisession", new_id())
        client.get("/get?a=")
    assert counting.writes == ["create"]
    if before is not None:
        assert store.stats(now).sessions == before


def test_login_moves_the_session_to_a_new_id(store: Store) -> None:
    """T14: /login sends a new id, keeps the data, and the old id comes back empty."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?cart=book")
    old = client.cookies["wsgisession"]
    response = client.get("/login?user=alice")
    new = session_cookie(response)
    assert new and new != old
    assert response.json == {"cart": "book", "user": "alice"}
    assert client.get("/get?cart=&user=").json == {"cart": "book", "user": "alice"}
    assert store.load(hash_id(old), middleware._now()) is None
    replay = webtest.TestApp(middleware)
    replay.set_cookie("wsgisession", old)
    assert replay.get("/get?cart=&user=").json == {"cart": None, "user": None}


def test_login_is_one_load_and_one_write(store: Store) -> None:
    """Regenerating at login costs one load and one write (the old record goes in the same call)."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    counting.reset()
    client.get("/login")
    assert counting.calls == ["load", "create"]


def test_fixed_id_is_never_authenticated(store: Store) -> None:
    """T15: an attacker's id X, given to a victim who logs in, never becomes authenticated."""
    middleware, _ = wrap(store)
    attacker = webtest.TestApp(middleware)
    attacker.get("/set?trap=1")
    fixed = attacker.cookies["wsgisession"]
    victim = webtest.TestApp(middleware)
    victim.set_cookie("wsgisession", fixed)
    victim.get("/login?user=victim")
    assert victim.cookies["wsgisession"] != fixed
    assert attacker.get("/get?user=").json == {"user": None}


def test_logout_deletes_and_expires(store: Store) -> None:
    """T16: /logout deletes the record and expires the cookie with the same Path and Domain."""
    middleware, _ = wrap(store, cookie_path="/", cookie_domain="localhost")
    client = webtest.TestApp(middleware, extra_environ={"HTTP_HOST": "localhost"})
    client.get("/set?user=bob")
    old = client.cookies["wsgisession"]
    response = client.get("/logout")
    attributes = cookie_attributes(response)
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/"
    assert attributes["domain"] == "localhost"
    assert store.load(hash_id(old), middleware._now()) is None


def test_replayed_logout_cookie_stays_dead(store: Store) -> None:
    """T16: replaying the old cookie after logout gives an empty session and recreates nothing."""
    middleware, counting = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    old = client.cookies["wsgisession"]
    client.get("/logout")
    replay = webtest.TestApp(middleware)
    replay.set_cookie("wsgisession", old)
    counting.reset()
    assert replay.get("/get?user=").json == {"user": None}
    assert counting.writes == []
    assert store.load(hash_id(old), middleware._now()) is None


def test_logout_without_cookie_sets_nothing(store: Store) -> None:
    """T17: /logout with no session cookie sends no Set-Cookie and writes nothing."""
    middleware, counting = wrap(store)
    response = webtest.TestApp(middleware).get("/logout")
    assert set_cookies(response) == []
    assert counting.writes == []


def test_logout_then_flash_starts_a_new_session(store: Store) -> None:
    """destroy() then a set starts a new session with a new id; the old one is gone."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    old = client.cookies["wsgisession"]
    response = client.get("/logout-flash")
    new = session_cookie(response)
    assert new and new != old
    assert client.get("/flashes").json == ["logged out"]
    assert client.get("/get?user=").json == {"user": None}
    assert store.load(hash_id(old), middleware._now()) is None


# Expiry ------------------------------------------------------------------------------------


def test_idle_session_expires_on_the_server(store: Store, clock: Clock) -> None:
    """T21: after max_age idle: an empty session, a new id, and the old record gone."""
    middleware, _ = wrap(store, max_age=600, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    old = client.cookies["wsgisession"]
    clock.advance(601)
    response = client.get("/set?other=1")
    assert response.json == {"other": "1"}
    assert session_cookie(response) != old
    assert store.load(hash_id(old), clock.now - 600) is None


def test_absolute_timeout_ends_an_active_session(store: Store, clock: Clock) -> None:
    """T22: a session kept busy past absolute_timeout expires anyway."""
    middleware, _ = wrap(store, max_age=600, touch_interval=0, absolute_timeout=1000, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    for _ in range(3):
        clock.advance(300)
        assert client.get("/get?user=").json == {"user": "bob"}
    clock.advance(300)
    assert clock.now - 1_800_000_000.0 == 1200
    assert client.get("/get?user=").json == {"user": None}


def test_regenerate_keeps_the_absolute_deadline(store: Store, clock: Clock) -> None:
    """T23: logging in (regenerate) does not restart the absolute timeout."""
    middleware, _ = wrap(store, max_age=600, touch_interval=0, absolute_timeout=1000, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    clock.advance(500)
    client.get("/login")
    clock.advance(400)
    assert client.get("/get?user=").json == {"user": "alice"}
    clock.advance(200)
    assert client.get("/get?user=").json == {"user": None}


def test_forged_cookie_expiry_is_irrelevant(store: Store, clock: Clock) -> None:
    """T24: a client resending the cookie with a far-future Expires cannot extend the session."""
    middleware, _ = wrap(store, max_age=600, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    value = client.cookies["wsgisession"]
    clock.advance(601)
    replay = webtest.TestApp(middleware)
    response = replay.get(
        "/get?user=",
        headers={"Cookie": f"wsgisession={value}; Expires=Fri, 31 Dec 9999 23:59:59 GMT"},
    )
    assert response.json == {"user": None}


def test_activity_slides_the_expiry(store: Store, clock: Clock) -> None:
    """T25: activity inside the idle window keeps the session alive past max_age."""
    middleware, _ = wrap(store, max_age=600, touch_interval=60, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    for _ in range(10):
        clock.advance(200)
        assert client.get("/get?user=").json == {"user": "bob"}


def test_refresh_writes_are_throttled(store: Store, clock: Clock) -> None:
    """T25: reads refresh the expiry with at most one write (and cookie) per touch_interval."""
    middleware, counting = wrap(store, max_age=600, touch_interval=60, clock=clock)
    client = webtest.TestApp(middleware)
    client.get("/set?user=bob")
    counting.reset()
    refreshed = []
    for _ in range(30):
        clock.advance(10)
        response = client.get("/get?user=")
        refreshed.append(bool(set_cookies(response)))
    assert counting.writes == ["save"] * 5
    assert sum(refreshed) == 5
    assert counting.calls.count("load") == 30


# Races ---------------------------------------------------------------------------------------


def _while_slow(
    client: webtest.TestApp, setup: str, during: str, slow: str = "/slow"
) -> tuple[str, list[str]]:
    """Run *setup*, then *during* while a *slow* request of the same session is in flight.

    /slow loads the session, waits until *during* has finished, then sets ``slow``
    (/slow-login regenerates instead). Returns the session cookie from before, and the
    Set-Cookie headers the slow request answered with.
    """
    client.get(setup)
    cookie = client.cookies["wsgisession"]
    gate = f"gate-{threading.get_ident()}-{len(SLOW_GATE)}"
    SLOW_GATE[gate] = threading.Event()
    SLOW_LOADED[gate] = threading.Event()
    answered: list[str] = []
    slow_path = slow

    def slow_request() -> None:
        slow = webtest.TestApp(client.app)
        slow.set_cookie("wsgisession", cookie)
        answered.extend(set_cookies(slow.get(f"{slow_path}?gate={gate}")))

    thread = threading.Thread(target=slow_request)
    thread.start()
    try:
        assert SLOW_LOADED[gate].wait(10), "the slow request never loaded its session"
        client.get(during)
    finally:
        SLOW_GATE[gate].set()
        thread.join(10)
    return cookie, answered


def test_slow_request_after_logout_does_not_resurrect(store: Store) -> None:
    """T46: /slow in flight, /logout completes, /slow finishes: the old id stays dead."""
    middleware, _ = wrap(store)
    old, answered = _while_slow(webtest.TestApp(middleware), "/set?user=bob", "/logout")
    assert answered == []
    assert store.load(hash_id(old), middleware._now()) is None
    replay = webtest.TestApp(middleware)
    replay.set_cookie("wsgisession", old)
    assert replay.get("/get?user=&slow=").json == {"user": None, "slow": None}


def test_slow_request_after_login_leaves_both_ids_right(store: Store) -> None:
    """T47: /slow in flight, /login regenerates: the old id is dead, the new id's data intact."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    old, _ = _while_slow(client, "/set?cart=book", "/login?user=alice")
    assert store.load(hash_id(old), middleware._now()) is None
    expected = {"cart": "book", "user": "alice", "slow": None}
    assert client.get("/get?cart=&user=&slow=").json == expected


def _live_sessions(store: Store, now: float) -> int:
    return store.stats(now).sessions


def test_login_after_a_logout_elsewhere_brings_no_session_back(store: Store) -> None:
    """A request that loaded S, then regenerates after another request destroyed S: no session.

    No new live session holds S's data and no Set-Cookie goes out (issue 13, item 1).
    """
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    old, answered = _while_slow(client, "/set?user=bob", "/logout", slow="/slow-login")
    assert answered == []
    assert store.load(hash_id(old), middleware._now()) is None
    assert _live_sessions(store, middleware._now()) == 0


def test_two_overlapping_logins_leave_one_session(store: Store) -> None:
    """Two requests regenerate one session at once: the first wins, the second sends no cookie."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    old, answered = _while_slow(client, "/set?cart=book", "/login?user=alice", slow="/slow-login")
    assert answered == []
    assert _live_sessions(store, middleware._now()) == 1
    assert client.get("/get?cart=&user=").json == {"cart": "book", "user": "alice"}
    assert store.load(hash_id(old), middleware._now()) is None


def test_deletion_is_not_undone_by_an_overlapping_write(store: Store) -> None:
    """T45: A deletes k while B (loaded before) sets j: k is absent and j present."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    _while_slow(client, "/set?k=1&user=bob", "/del?k")
    assert client.get("/get?k=&slow=&user=").json == {"k": None, "slow": "done", "user": "bob"}


def test_overlapping_writes_of_different_keys_both_land(store: Store) -> None:
    """T43 in small: a slow request and a fast one change different keys; both persist."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    _while_slow(client, "/set?user=bob", "/set?fast=1")
    expected = {"fast": "1", "slow": "done", "user": "bob"}
    assert client.get("/get?fast=&slow=&user=").json == expected


def test_read_only_overlap_never_clobbers(store: Store) -> None:
    """T48: a write that lands while a read-only request is in flight is not undone by it."""
    middleware, _ = wrap(store)
    client = webtest.TestApp(middleware)
    client.get("/set?a=1")
    cookie = client.cookies["wsgisession"]
    gate = "t48"
    SLOW_GATE[gate] = threading.Event()
    SLOW_LOADED[gate] = threading.Event()

    def reader() -> None:
        other = webtest.TestApp(middleware)
        other.set_cookie("wsgisession", cookie)
        other.get(f"/peek?gate={gate}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert SLOW_LOADED[gate].wait(10)
        client.get("/set?a=2")
    finally:
        SLOW_GATE[gate].set()
        thread.join(10)
    assert client.get("/get?a=").json == {"a": "2"}
