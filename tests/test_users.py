"""A user's sessions: binding at login, listing, revoking, on every server store."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import webtest

from tests.conftest import Clock, make_store
from tests.helpers import SessionClient, session_cookie, set_cookies
from wsgisession import (
    NoUserIndexError,
    Session,
    SessionError,
    SessionInfo,
    SessionMiddleware,
    Store,
    UserIdError,
    revoke_user,
    user_sessions,
)
from wsgisession.core import Exchange, SessionCore
from wsgisession.signing import hash_id


@pytest.fixture
def indexed(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A fresh store of each kind that keeps a user index."""
    store = make_store(store_kind, tmp_path, request)
    try:
        store.user_sessions("probe", 0.0)
    except NoUserIndexError:
        store.close()
        pytest.skip(f"{type(store).__name__} keeps no user index yet")
    yield store
    store.close()


def login(user: str) -> Any:
    """The view of a login: a new id, then the binding."""

    def view(session: Session) -> None:
        session.regenerate()
        session.set_user(user)

    return view


def browsers(store: Store, count: int, user: str = "ann", **options: Any) -> list[SessionClient]:
    """*count* browsers, each logged in as *user*."""
    clients = [SessionClient(store, **options) for _ in range(count)]
    for client in clients:
        client.run(lambda session: session.set("visits", 1))
        client.run(login(user))
    return clients


# Binding -------------------------------------------------------------------------------------


def test_binding_a_new_session_is_in_its_one_create(indexed: Store) -> None:
    """set_user on a new session: one create, no other call, and the user is indexed."""
    browser = SessionClient(indexed)
    _, response = browser.run(lambda session: session.set_user("ann"))
    assert browser.store.calls == ["create"]
    assert session_cookie(response)
    user, _ = browser.run(lambda session: session.user_id)
    assert user == "ann"
    assert browser.store.calls == ["load"]
    assert len(user_sessions(indexed, "ann")) == 1


def test_login_regenerate_and_bind_is_one_write(indexed: Store) -> None:
    """regenerate() then set_user(): the load and one create that replaces the old record."""
    browser = SessionClient(indexed)
    browser.run(lambda session: session.set("cart", ["book"]))
    old = browser.client.cookies["wsgisession"]
    browser.run(login("ann"))
    assert browser.store.calls == ["load", "create"]
    assert browser.client.cookies["wsgisession"] != old
    assert indexed.load(hash_id(old), time.time()) is None
    assert browser.data() == {"cart": ["book"]}
    assert len(user_sessions(indexed, "ann")) == 1


def test_binding_a_loaded_session_is_one_save(indexed: Store) -> None:
    """set_user on an existing session costs the save it would have made anyway, no more."""
    browser = SessionClient(indexed)
    browser.run(lambda session: session.set("a", 1))
    browser.run(lambda session: session.set_user("ann"))
    assert browser.store.calls == ["load", "save"]
    browser.run(lambda session: (session.set_user("ann"), session.set("b", 2)))
    assert browser.store.calls == ["load", "save"]


def test_a_bound_session_costs_what_an_unbound_one_does(indexed: Store) -> None:
    """Reading and writing a bound session make the same calls as an unbound one."""
    bound, unbound = SessionClient(indexed), SessionClient(indexed)
    bound.run(lambda session: (session.set("a", 1), session.set_user("ann")))
    unbound.run(lambda session: session.set("a", 1))
    for browser in (bound, unbound):
        browser.run(lambda session: session.get("a"))
        assert browser.store.calls == ["load"]
        browser.run(lambda session: session.set("a", 2))
        assert browser.store.calls == ["load", "save"]


def test_binding_the_same_user_again_writes_nothing(indexed: Store) -> None:
    """set_user with the user the session has is no change."""
    browser = SessionClient(indexed)
    browser.run(lambda session: session.set_user("ann"))
    browser.run(lambda session: session.set_user("ann"))
    assert browser.store.calls == ["load"]


def test_a_bound_session_without_data_lives_on(indexed: Store) -> None:
    """A session holding only its binding is kept, through regenerate() too."""
    browser = SessionClient(indexed)
    browser.run(lambda session: session.set_user("ann"))
    _, response = browser.run(lambda session: session.regenerate())
    assert session_cookie(response)
    user, _ = browser.run(lambda session: session.user_id)
    assert user == "ann"


@pytest.mark.parametrize("bad", [42, b"ann", "", ["ann"]])
def test_set_user_refuses_what_is_not_a_non_empty_str(indexed: Store, bad: Any) -> None:
    """A user id that is not a non-empty str raises UserIdError; the session is unchanged."""
    browser = SessionClient(indexed)
    browser.run(lambda session: session.set("a", 1))

    def view(session: Session) -> str:
        with pytest.raises(UserIdError, match="non-empty str") as caught:
            session.set_user(bad)
        assert isinstance(caught.value, (SessionError, ValueError))
        return str(session.user_id)

    result, _ = browser.run(view)
    assert result == "None"
    assert browser.store.writes == []


def test_unbinding_and_logout_drop_the_session_from_the_list(indexed: Store) -> None:
    """set_user(None) and destroy() each take the session out of its user's list."""
    one, two, _three = browsers(indexed, 3)
    assert len(user_sessions(indexed, "ann")) == 3
    one.run(lambda session: session.set_user(None))
    two.run(lambda session: session.destroy())
    assert len(user_sessions(indexed, "ann")) == 1
    user, _ = one.run(lambda session: session.user_id)
    assert user is None
    assert one.data() == {"visits": 1}


# Listing -------------------------------------------------------------------------------------


def test_user_sessions_lists_every_browser_with_this_one_current(indexed: Store) -> None:
    """Three browsers of ann, one of bob: ann's list has three, hers marked current."""
    clock = Clock()
    ann = browsers(indexed, 3, clock=clock)
    browsers(indexed, 1, "bob", clock=clock)
    infos, _ = ann[1].run(lambda session: session.user_sessions())
    assert len(infos) == 3
    assert all(isinstance(info, SessionInfo) for info in infos)
    assert [info.current for info in infos].count(True) == 1
    handles = {info.handle for info in infos}
    assert len(handles) == 3 and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in handles)
    now = datetime.fromtimestamp(clock.now, tz=timezone.utc)
    for info in infos:
        assert info.created.tzinfo is timezone.utc and info.expires.tzinfo is timezone.utc
        assert info.created == now
        assert info.last_seen == now
        assert (info.expires - now).total_seconds() == 1209600
        assert info.info == {}
    assert ann[1].store.calls == ["load", "user_sessions"]


def test_last_seen_follows_the_refreshed_expiry(indexed: Store) -> None:
    """last_seen is when the expiry was last refreshed: accurate to touch_interval."""
    clock = Clock()
    one, two = browsers(indexed, 2, clock=clock, touch_interval=60)
    start = clock.now
    clock.advance(3600)
    two.run(lambda session: session.get("visits"))  # refreshes its expiry
    clock.advance(100)
    infos, _ = one.run(lambda session: session.user_sessions())
    by_current = {info.current: info for info in infos}
    assert by_current[True].last_seen.timestamp() == clock.now
    assert by_current[False].last_seen.timestamp() == start + 3600
    assert by_current[False].created.timestamp() == start


def test_an_unbound_session_cannot_list_or_revoke(indexed: Store) -> None:
    """Without set_user there is no user to ask about: a SessionError that says so."""
    browser = SessionClient(indexed)

    def view(session: Session) -> None:
        for call in (
            session.user_sessions,
            session.revoke_other_sessions,
            lambda: session.revoke_session("0" * 64),
        ):
            with pytest.raises(SessionError, match="set_user"):
                call()

    browser.run(view)


# Revoking ------------------------------------------------------------------------------------


def test_revoke_other_sessions_ends_them_and_keeps_this_one(indexed: Store) -> None:
    """After a password change: the others are logged out, this browser is not."""
    me, *others = browsers(indexed, 3)
    (bob,) = browsers(indexed, 1, "bob")
    ended, _ = me.run(lambda session: session.revoke_other_sessions())
    assert ended == 2
    assert me.store.calls == ["load", "revoke_user"]
    for other in others:
        user, _ = other.run(lambda session: session.user_id)
        assert user is None
        assert other.data() == {}
    user, _ = me.run(lambda session: session.user_id)
    assert user == "ann" and me.data() == {"visits": 1}
    user, _ = bob.run(lambda session: session.user_id)
    assert user == "bob"


def test_login_and_revoke_others_in_one_request(indexed: Store) -> None:
    """regenerate(), set_user() and revoke_other_sessions() together: this browser stays in."""
    (other,) = browsers(indexed, 1)
    me = SessionClient(indexed)
    me.run(lambda session: session.set("visits", 1))

    def view(session: Session) -> int:
        login("ann")(session)
        return session.revoke_other_sessions()

    ended, response = me.run(view)
    assert ended == 1
    assert session_cookie(response)
    user, _ = me.run(lambda session: session.user_id)
    assert user == "ann"
    user, _ = other.run(lambda session: session.user_id)
    assert user is None


def test_revoke_session_ends_the_one_named(indexed: Store) -> None:
    """revoke_session(handle) logs out that browser only, once; unknown handles end nothing."""
    me, them, third = browsers(indexed, 3)
    (bob,) = browsers(indexed, 1, "bob")
    infos, _ = them.run(lambda session: session.user_sessions())
    theirs = next(info.handle for info in infos if info.current)
    bobs, _ = bob.run(lambda session: session.user_sessions())
    assert me.run(lambda session: session.revoke_session(theirs))[0] is True
    assert me.run(lambda session: session.revoke_session(theirs))[0] is False
    assert me.run(lambda session: session.revoke_session(bobs[0].handle))[0] is False
    assert me.run(lambda session: session.revoke_session("f" * 64))[0] is False
    assert me.run(lambda session: session.revoke_session("é"))[0] is False
    assert them.run(lambda session: session.user_id)[0] is None
    assert third.run(lambda session: session.user_id)[0] == "ann"
    assert bob.run(lambda session: session.user_id)[0] == "bob"


def test_revoking_this_sessions_own_handle_logs_it_out(indexed: Store) -> None:
    """This session's own handle destroys it: the record goes and the cookie is expired."""
    (me,) = browsers(indexed, 1)

    def view(session: Session) -> bool:
        mine = next(info.handle for info in session.user_sessions() if info.current)
        return session.revoke_session(mine)

    ended, response = me.run(view)
    assert ended is True
    assert any("Max-Age=0" in cookie for cookie in set_cookies(response))
    assert user_sessions(indexed, "ann") == []


def test_a_handle_is_not_a_credential(indexed: Store) -> None:
    """A handle sent as the session cookie opens no session (and it names no store key)."""
    (me,) = browsers(indexed, 1)
    (info,) = user_sessions(indexed, "ann")
    assert info.handle != hash_id(me.client.cookies["wsgisession"])
    thief = SessionClient(indexed)
    thief.client.set_cookie("wsgisession", info.handle)
    assert thief.run(lambda session: session.user_id)[0] is None
    assert thief.store.calls == []  # not the shape of an id: never looked up
    assert indexed.load(info.handle, 0.0) is None


def test_revoke_user_without_a_request_logs_every_browser_out(indexed: Store) -> None:
    """wsgisession.revoke_user(store, user) ends them all; user_sessions then lists none."""
    clients = browsers(indexed, 3)
    assert len(user_sessions(indexed, "ann")) == 3
    assert all(info.current is False for info in user_sessions(indexed, "ann"))
    assert revoke_user(indexed, "ann") == 3
    assert user_sessions(indexed, "ann") == []
    for client in clients:
        assert client.data() == {}
    assert revoke_user(indexed, "ann") == 0


@pytest.mark.parametrize("bad", [None, 7, ""])
def test_the_free_functions_refuse_a_bad_user_id(bad: Any) -> None:
    """user_sessions and revoke_user name the function and what a user id must be."""
    from wsgisession import MemoryStore

    with pytest.raises(UserIdError, match="user_sessions"):
        user_sessions(MemoryStore(), bad)
    with pytest.raises(UserIdError, match="revoke_user"):
        revoke_user(MemoryStore(), bad)


def test_the_free_functions_refuse_what_is_not_a_store() -> None:
    """Passing a URL where the store goes says to build the store."""
    with pytest.raises(TypeError, match="store_from_url"):
        user_sessions("sqlite:///x.db", "ann")  # type: ignore[arg-type]


# Client-side sessions and detached sessions ----------------------------------------------------


def test_cookie_store_binds_but_refuses_to_list_or_revoke() -> None:
    """CookieStore keeps the binding in the cookie; listing or revoking says why it cannot."""
    pytest.importorskip("cryptography")
    from wsgisession import CookieStore

    store = CookieStore()

    def app(environ: Any, start_response: Any) -> list[bytes]:
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/login":
            session.set_user("ann")
        else:
            assert session.user_id == "ann"
            with pytest.raises(NoUserIndexError, match="server state"):
                session.user_sessions()
            with pytest.raises(NoUserIndexError, match="server state"):
                session.revoke_other_sessions()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = webtest.TestApp(SessionMiddleware(app, store=store, secret_keys=["k" * 32]))
    client.get("/login")
    client.get("/list")
    for call in (lambda: user_sessions(store, "ann"), lambda: revoke_user(store, "ann")):
        with pytest.raises(NoUserIndexError, match="SqliteStore, RedisStore or PostgresStore"):
            call()


def test_a_detached_session_has_no_index() -> None:
    """A Session built without a core binds, but has no store to list from."""
    session = Session()
    session.set_user("ann")
    assert session.user_id == "ann"
    with pytest.raises(NoUserIndexError, match="no store behind it"):
        session.user_sessions()


def test_a_store_without_an_index_says_how_to_add_one(tmp_path: Path) -> None:
    """A custom store that defines no index: the error names the methods to define."""
    from wsgisession.testing import CountingStore

    class Plain(CountingStore):
        def user_sessions(self, user_id: str, now: float) -> Any:
            return Store.user_sessions(self, user_id, now)

    with pytest.raises(NoUserIndexError, match=r"define user_sessions\(user_id, now\)"):
        user_sessions(Plain(make_store("memory", tmp_path)), "ann")


def test_describe_fills_the_sessions_info(indexed: Store) -> None:
    """A front end's Exchange.describe() is stored with the binding and listed as info."""
    core = SessionCore(indexed)

    class Described(Exchange):
        def describe(self) -> dict[str, Any]:
            return {"agent": "Firefox on Linux"}

    exchange = Described(core, None, False)
    exchange.session.set_user("ann")
    assert exchange.finish(200, []).cookie_value
    (info,) = user_sessions(indexed, "ann")
    assert info.info == {"agent": "Firefox on Linux"}
    plain = core.begin(None, False)
    plain.session.set_user("bob")
    plain.finish(200, [])
    assert user_sessions(indexed, "bob")[0].info == {}
