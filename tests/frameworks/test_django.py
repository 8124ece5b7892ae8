"""The Django engine through Django itself: its SessionMiddleware, auth, messages, the admin and
the test Client, on every store.

The project is ``tests/frameworks/django_project``; each test picks its store with
``override_settings(WSGISESSION_STORE=...)`` (the engine rebuilds itself when it changes).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.frameworks.conftest import need, need_user_index

django = need("django")

from django.contrib.auth import get_user_model  # noqa: E402
from django.core import checks  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import AsyncClient, Client, override_settings  # noqa: E402

import wsgisession  # noqa: E402
from tests.conftest import Clock  # noqa: E402
from tests.frameworks import django_project  # noqa: E402
from tests.support.stores import deep_list  # noqa: E402
from wsgisession import CookieStore, MemoryStore, SessionMiddleware, Store, get_session  # noqa: E402
from wsgisession.signing import hash_id, new_id  # noqa: E402
from wsgisession.testing import CountingStore  # noqa: E402

django_project.configure()

from wsgisession.integrations.django import SessionStore  # noqa: E402

COOKIE = "sessionid"  # Django's SESSION_COOKIE_NAME


# Helpers -------------------------------------------------------------------------------------


@pytest.fixture
def engine(store: Store) -> Iterator[Store]:
    """The engine on each store kind in turn (memory, sqlite, redis, postgres)."""
    with override_settings(WSGISESSION_STORE=store):
        yield store


@pytest.fixture
def memory() -> Iterator[CountingStore]:
    """The engine on a MemoryStore, seen through a CountingStore that records every call."""
    counting = CountingStore(MemoryStore())
    with override_settings(WSGISESSION_STORE=counting):
        yield counting


@pytest.fixture
def user() -> Any:
    """A staff user of the project's database, with the password ``pw``."""
    return get_user_model().objects.create_user(
        f"alice-{secrets.token_hex(4)}", password="pw", is_staff=True, is_superuser=True
    )


def session_id(client: Client) -> str:
    """The session id in the client's cookie (the part before the signature)."""
    return client.cookies[COOKIE].value.split(".")[0]


def record_of(store: Store, value: str) -> Any:
    """The live record the store holds for the session cookie *value*, or None."""
    return store.load(hash_id(value.split(".")[0]), time.time())


def log_in(client: Client, user: Any) -> None:
    """Log *user* in through the project's login view (django.contrib.auth.login)."""
    response = client.post("/login", {"username": user.get_username(), "password": "pw"})
    assert response.status_code == 200, response.content


# The engine is Django's request.session ------------------------------------------------------


def test_request_session_counts_through_djangos_middleware(engine: Store) -> None:
    """Django's SessionMiddleware keeps a counter in our session, on every store."""
    client = Client()
    assert [client.get("/count").content for _ in range(3)] == [b"1", b"2", b"3"]
    assert record_of(engine, client.cookies[COOKIE].value).data == {"n": 3}


async def _async_counts(client: AsyncClient) -> list[bytes]:
    return [(await client.get("/async-count")).content for _ in range(3)]


def test_async_views_use_the_same_session(engine: Store) -> None:
    """An async view (aget/aset) through Django's AsyncClient shares the sync views' session."""
    client = AsyncClient()
    assert asyncio.run(_async_counts(client)) == [b"1", b"2", b"3"]
    sync = Client()
    sync.cookies = client.cookies
    assert sync.get("/count").content == b"4"


def test_cookie_carries_a_signed_id_and_the_store_only_its_hash(engine: Store) -> None:
    """T11: Django's cookie is ``id.signature`` (SECRET_KEY signs it); the store keys by hash."""
    client = Client()
    client.get("/set?k=v")
    value = client.cookies[COOKIE].value
    session, _, signature = value.partition(".")
    assert len(session) == 43 and len(signature) == 43
    assert engine.load(session, time.time()) is None
    assert engine.load(hash_id(session), time.time()) is not None


def test_untouched_and_read_only_requests_send_no_cookie(memory: CountingStore) -> None:
    """T02/T09: no store call for /noop; one load and no write or cookie for a read."""
    client = Client()
    client.get("/set?k=v")
    memory.reset()
    response = client.get("/noop")
    assert memory.calls == [] and COOKIE not in response.cookies
    response = client.get("/get")
    assert response.json() == {"data": {"k": "v"}}
    assert memory.calls == ["load"] and COOKIE not in response.cookies
    assert "Cookie" in response.headers["Vary"]


@pytest.mark.parametrize(
    "value",
    [
        new_id(),  # well formed but unsigned
        f"{new_id()}.{new_id()}",  # signed with a key we do not have
        "x" * 8000,
        "../../etc/passwd",
    ],
    ids=["unsigned", "forged-signature", "8k", "traversal"],
)
def test_forged_cookie_costs_no_store_call_and_is_never_adopted(
    memory: CountingStore, value: str
) -> None:
    """T12/T26/T30: a cookie the server did not issue: no store call, a new session and key."""
    client = Client()
    client.cookies[COOKIE] = value
    response = client.get("/set?k=v")
    assert response.status_code == 200
    assert memory.calls == ["create"]
    issued = response.cookies[COOKIE].value
    assert issued.split(".")[0] != value.split(".")[0]
    assert record_of(memory, value) is None


def test_unknown_id_is_never_adopted(memory: CountingStore) -> None:
    """T12/T15: a well-signed id the store does not know gives a new key; nothing is stored
    under the client's value."""
    client = Client()
    client.get("/set?k=v")
    stale = client.cookies[COOKIE].value
    memory.inner.delete(hash_id(stale.split(".")[0]))
    response = client.get("/set?k=w")
    assert response.cookies[COOKIE].value != stale
    assert record_of(memory, stale) is None
    assert record_of(memory, response.cookies[COOKIE].value).data == {"k": "w"}


def test_nested_change_is_saved_without_the_modified_flag(memory: CountingStore) -> None:
    """T19: ``request.session["cart"].append(x)`` is saved; Django would need modified=True."""
    client = Client()
    client.get("/set?cart=")
    store = SessionStore(client.cookies[COOKIE].value)
    store["cart"] = ["apple"]
    store.save()
    again = SessionStore(client.cookies[COOKIE].value)
    again["cart"].append("pear")
    assert again.modified is True
    again.save()
    assert client.get("/get").json()["data"]["cart"] == ["apple", "pear"]


def test_a_response_that_sets_the_cookie_is_private(memory: CountingStore) -> None:
    """T40: a response with the session cookie gets Cache-Control: private; one without, none."""
    client = Client()
    assert client.get("/set?k=v")["Cache-Control"] == "private"
    assert not client.get("/get").has_header("Cache-Control")
    assert client.post("/logout")["Cache-Control"] == "private"  # the cookie expired


def test_an_emptied_session_keeps_its_key(engine: Store) -> None:
    """A session emptied key by key (not flushed) is saved empty and keeps its key and cookie."""
    client = Client()
    client.get("/set?foo=bar")
    value = client.cookies[COOKIE].value
    response = client.get("/drop?foo")
    assert response.cookies[COOKIE].value == value
    assert record_of(engine, value).data == {}
    assert client.get("/get").json() == {"data": {}}


def test_a_failed_view_saves_nothing(memory: CountingStore) -> None:
    """T18: a view that raises after setting a key: a 500, nothing stored, no cookie."""
    client = Client(raise_request_exception=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert memory.writes == [] and COOKIE not in response.cookies


# Concurrency: per-key merge and no resurrection ----------------------------------------------


def test_overlapping_requests_changing_different_keys_both_land(engine: Store) -> None:
    """T43/T45: two requests of one session set and delete different keys; both changes land."""
    client = Client()
    client.get("/set?keep=1&gone=1")
    value = client.cookies[COOKIE].value
    first, second = SessionStore(value), SessionStore(value)
    assert first["keep"] == second["keep"] == "1"  # both loaded before either saves
    first["a"] = "from first"
    del first["gone"]
    second["b"] = "from second"
    first.save()
    second.save()
    data = client.get("/get").json()["data"]
    assert data == {"keep": "1", "a": "from first", "b": "from second"}


def test_a_slow_request_never_brings_back_a_logged_out_session(engine: Store, user: Any) -> None:
    """T46: a request in flight when the user logs out finishes without reviving the session."""
    client = Client()
    log_in(client, user)
    value = client.cookies[COOKIE].value
    slow = SessionStore(value)
    assert slow["_auth_user_id"] == str(user.pk)
    client.post("/logout")
    slow["late"] = "write"
    slow.save()
    assert record_of(engine, value) is None
    replay = Client()
    replay.cookies[COOKIE] = value
    assert replay.get("/whoami").content == b"anonymous"


# django.contrib.auth, messages, the admin, the test Client -----------------------------------


def test_login_moves_the_session_and_logout_leaves_no_way_back(engine: Store, user: Any) -> None:
    """T14/T16 on every store: login cycles the key (data kept), logout deletes the record and
    the cookie, and replaying the old cookies gives an anonymous visitor and no new record."""
    client = Client()
    client.get("/set?cart=apple")
    anonymous = client.cookies[COOKIE].value
    log_in(client, user)
    logged_in = client.cookies[COOKIE].value
    assert logged_in != anonymous and record_of(engine, anonymous) is None
    assert client.get("/whoami").content == user.get_username().encode()
    assert client.get("/get").json()["data"]["cart"] == "apple"

    response = client.post("/logout")
    assert response.cookies[COOKIE].value == "" and response.cookies[COOKIE]["max-age"] == 0
    assert record_of(engine, logged_in) is None
    for old in (anonymous, logged_in):
        replay = Client()
        replay.cookies[COOKIE] = old
        assert replay.get("/whoami").content == b"anonymous"
        assert replay.get("/get").json() == {"data": {}}
        assert record_of(engine, old) is None


def test_login_binds_the_session_and_logout_unbinds_it(engine: Store, user: Any) -> None:
    """auth's login() binds the session to str(user.pk); logout() takes it off the list."""
    need_user_index(engine)
    laptop, phone = Client(), Client()
    log_in(laptop, user)
    assert len(wsgisession.user_sessions(engine, str(user.pk))) == 1
    phone.force_login(user)  # the test Client's login sends user_logged_in too
    listed = wsgisession.user_sessions(engine, str(user.pk))
    assert len(listed) == 2
    laptop.post("/logout")
    assert len(wsgisession.user_sessions(engine, str(user.pk))) == 1
    phone.logout()
    assert wsgisession.user_sessions(engine, str(user.pk)) == []


def test_revoke_user_ends_a_django_login(engine: Store, user: Any) -> None:
    """wsgisession.revoke_user() ends every session of the user: the next request is anonymous."""
    need_user_index(engine)
    client, other = Client(), Client()
    client.get("/set?cart=apple")
    log_in(client, user)
    other.get("/set?cart=pear")  # a session bound to no one: untouched
    assert client.get("/whoami").content == user.get_username().encode()
    assert wsgisession.revoke_user(engine, str(user.pk)) == 1
    assert client.get("/whoami").content == b"anonymous"
    assert client.get("/get").json() == {"data": {}}
    assert other.get("/get").json()["data"] == {"cart": "pear"}
    assert wsgisession.user_sessions(engine, str(user.pk)) == []


def describe_agent(meta: Any) -> dict[str, str]:
    """A describe hook for the engine: the user agent in request.META."""
    return {"agent": meta.get("HTTP_USER_AGENT", "")}


@pytest.mark.parametrize("hook", [describe_agent, f"{__name__}.describe_agent"])
def test_describe_in_the_options_is_kept_with_a_login(user: Any, hook: Any) -> None:
    """WSGISESSION_OPTIONS["describe"] (a function or its dotted path) describes each login."""
    store = MemoryStore()
    with override_settings(WSGISESSION_STORE=store, WSGISESSION_OPTIONS={"describe": hook}):
        client = Client(HTTP_USER_AGENT="DjangoBrowser/1")
        client.get("/set?k=v")  # bound to no one: nothing described
        log_in(client, user)
        (info,) = wsgisession.user_sessions(store, str(user.pk))
    assert info.info == {"agent": "DjangoBrowser/1"}
    with override_settings(WSGISESSION_STORE=store):
        Client(HTTP_USER_AGENT="DjangoBrowser/1").force_login(user)
        assert sorted(len(i.info) for i in wsgisession.user_sessions(store, str(user.pk))) == [
            0,
            1,
        ]


def test_describe_naming_nothing_is_improperly_configured() -> None:
    """A dotted describe path that imports nothing fails at start, naming the option."""
    with (
        override_settings(WSGISESSION_OPTIONS={"describe": "no.such.module.describe"}),
        pytest.raises(ImproperlyConfigured, match=r"WSGISESSION_OPTIONS\['describe'\]"),
    ):
        Client().get("/count")


def test_session_fixation_fails(memory: CountingStore, user: Any) -> None:
    """T15: a victim who logs in with a cookie an attacker planted never authenticates it."""
    attacker = Client()
    attacker.get("/set?planted=1")
    planted = attacker.cookies[COOKIE].value
    victim = Client()
    victim.cookies[COOKIE] = planted
    log_in(victim, user)
    assert victim.cookies[COOKIE].value != planted
    assert attacker.get("/whoami").content == b"anonymous"


def test_test_client_login_force_login_and_logout(memory: CountingStore, user: Any) -> None:
    """Django's test Client: login(), force_login() and logout() work on the engine."""
    client = Client()
    assert client.login(username=user.get_username(), password="pw") is True
    assert client.get("/whoami").content == user.get_username().encode()
    client.logout()
    assert client.get("/whoami").content == b"anonymous"
    client.force_login(user)
    assert client.get("/whoami").content == user.get_username().encode()


def test_test_client_session_can_be_edited_and_saved(memory: CountingStore) -> None:
    """``session = client.session; session[k] = v; session.save()`` reaches the next request."""
    client = Client()
    session = client.session
    session["seeded"] = "by the test"
    session.save()
    assert client.get("/get").json()["data"] == {"seeded": "by the test"}
    assert client.session["seeded"] == "by the test"


def test_messages_are_shown_once(memory: CountingStore, user: Any) -> None:
    """The messages framework's SessionStorage keeps messages in our session until shown."""
    client = Client()
    client.get("/flash?text=saved&level=success")
    client.get("/flash?text=careful&level=warning")
    assert client.get("/inbox").json()["messages"] == [
        ["success", "saved"],
        ["warning", "careful"],
    ]
    assert client.get("/inbox").json()["messages"] == []
    log_in(client, user)  # the login view adds a message; it survives the key change
    assert client.get("/inbox").json()["messages"] == [["success", f"welcome {user}"]]


def test_admin_login_page_and_login(memory: CountingStore, user: Any) -> None:
    """The admin passes its checks (no admin.E410), and its login page logs a staff user in."""
    problems = [message.id for message in checks.run_checks()]
    assert "admin.E410" not in problems, problems
    client = Client()
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200 and b'name="password"' in page.content
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": user.get_username(), "password": "pw", "next": "/admin/"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    home = client.get("/admin/")
    assert home.status_code == 200 and b"Site administration" in home.content
    client.post("/admin/logout/")
    assert client.get("/admin/").status_code == 302  # back to the login page


# Expiry, refresh and clearsessions --------------------------------------------------------------


@pytest.fixture
def clocked() -> Iterator[tuple[Clock, CountingStore]]:
    """The engine on a MemoryStore, with a clock the test moves."""
    clock = Clock(time.time())
    counting = CountingStore(MemoryStore())
    options = {"clock": clock, "touch_interval": 60}
    with override_settings(WSGISESSION_STORE=counting, WSGISESSION_OPTIONS=options):
        yield clock, counting


def test_idle_expiry_is_enforced_on_the_server(clocked: tuple[Clock, CountingStore]) -> None:
    """T21: after SESSION_COOKIE_AGE of idleness the old cookie gives an empty session."""
    clock, counting = clocked
    client = Client()
    with override_settings(SESSION_COOKIE_AGE=600):
        client.get("/set?k=v")
        clock.advance(599)
        assert client.get("/get").json() == {"data": {"k": "v"}}  # which refreshes it
        clock.advance(599)
        assert client.get("/get").json() == {"data": {"k": "v"}}
        clock.advance(601)
        assert client.get("/get").json() == {"data": {}}
    assert len(counting.inner) == 0


def test_refresh_is_written_and_sent_at_most_once_per_touch_interval(
    clocked: tuple[Clock, CountingStore],
) -> None:
    """T25: read-only use keeps the session alive; the refresh is a write (and a cookie) only
    once touch_interval has passed."""
    clock, counting = clocked
    client = Client()
    client.get("/set?k=v")
    counting.reset()
    clock.advance(30)
    assert COOKIE not in client.get("/get").cookies
    assert counting.writes == []
    clock.advance(31)
    response = client.get("/get")
    assert counting.writes == ["save"]
    assert response.cookies[COOKIE]["max-age"] == 1209600


def test_set_expiry_seconds_and_browser_close(memory: CountingStore) -> None:
    """``set_expiry(60)`` gives a 60 s cookie and server lifetime; ``set_expiry(0)`` a browser
    cookie; ``set_expiry(None)`` the default again."""
    client = Client()
    short = client.get("/expiry?seconds=60")
    assert short.json() == {"age": 60, "at_browser_close": False}
    assert short.cookies[COOKIE]["max-age"] == 60
    record = record_of(memory, short.cookies[COOKIE].value)
    assert 55 <= record.expires - time.time() <= 60
    browser = client.get("/expiry?seconds=0")
    assert browser.json()["at_browser_close"] is True
    assert browser.cookies[COOKIE]["max-age"] == ""
    default = client.get("/expiry")
    assert default.json() == {"age": 1209600, "at_browser_close": False}


def test_clearsessions_purges_expired_sessions(clocked: tuple[Clock, CountingStore]) -> None:
    """``manage.py clearsessions`` calls clear_expired(), which purges the store."""
    clock, counting = clocked
    old, fresh = Client(), Client()
    old.get("/set?k=old")
    clock.advance(1209600 - 100)
    fresh.get("/set?k=fresh")
    clock.advance(200)
    counting.reset()
    call_command("clearsessions")
    assert counting.calls == ["purge"]
    assert len(counting.inner) == 1
    assert fresh.get("/get").json() == {"data": {"k": "fresh"}}


# Store outages ----------------------------------------------------------------------------------


@pytest.fixture
def down_redis(redis_server: Any, request: pytest.FixtureRequest) -> Iterator[Callable[[], None]]:
    """The engine on a Redis of the test's own; calling the value stops that server."""
    from wsgisession import RedisStore

    store = RedisStore(redis_server.url, socket_timeout=1)
    request.addfinalizer(store.close)
    with override_settings(WSGISESSION_STORE=store):
        yield redis_server.stop


def test_store_outage_gives_a_503(
    down_redis: Callable[[], None], caplog: pytest.LogCaptureFixture
) -> None:
    """T49 through Django: loading or saving in a store that is down gives the core's 503, with
    Retry-After, a generic body, and no session cookie."""
    client = Client()
    client.get("/set?k=v")
    value = client.cookies[COOKIE].value
    down_redis()
    with caplog.at_level(logging.ERROR, logger="wsgisession"):
        loading = client.get("/get")
        saving = Client().get("/set?k=new")
    for response in (loading, saving):
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert COOKIE not in response.cookies
        assert b"Traceback" not in response.content and b"redis" not in response.content
    assert value not in caplog.text and value.split(".")[0] not in caplog.text


def test_store_outage_without_the_middleware_is_a_500(down_redis: Callable[[], None]) -> None:
    """Without SessionPolicyMiddleware an outage still stops the request (a 500), never silently."""
    middleware = [m for m in django_project.MIDDLEWARE if "SessionPolicy" not in m]
    with override_settings(MIDDLEWARE=middleware):
        down_redis()
        response = Client(raise_request_exception=False).get("/set?k=v")
    assert response.status_code == 500


def test_store_outage_under_continue_serves_an_unsaved_session(
    down_redis: Callable[[], None],
) -> None:
    """T50: ``on_store_error="continue"``: the view runs on an empty session; no cookie changes."""
    client = Client()
    with override_settings(WSGISESSION_OPTIONS={"on_store_error": "continue"}):
        client.get("/set?k=v")
        down_redis()
        response = client.get("/count")
    assert response.status_code == 200 and response.content == b"1"
    assert COOKIE not in response.cookies


# One session with the other front ends ----------------------------------------------------------


def test_the_wsgi_middleware_reads_what_django_wrote(memory: CountingStore) -> None:
    """Item 4 in process: SessionMiddleware with the same store, cookie name and keys reads the
    session Django wrote, and Django reads what it wrote back."""
    import webtest

    def app(environ: Any, start_response: Any) -> list[bytes]:
        session = get_session(environ)
        seen = str(session.get("k"))
        session["from_wsgi"] = "hello"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [seen.encode()]

    wsgi = webtest.TestApp(
        SessionMiddleware(
            app, store=memory, cookie_name=COOKIE, secret_keys=[django_project.SECRET_KEY]
        )
    )
    client = Client()
    client.get("/set?k=from-django")
    wsgi.set_cookie(COOKIE, client.cookies[COOKIE].value)
    assert wsgi.get("/").text == "from-django"
    assert client.get("/get").json()["data"] == {"k": "from-django", "from_wsgi": "hello"}


# Configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"WSGISESSION_STORE": None}, "WSGISESSION_STORE is not set"),
        ({"WSGISESSION_STORE": "nosuch://x"}, "WSGISESSION_STORE:"),
        ({"WSGISESSION_STORE": 42}, "neither a store URL nor a Store"),
        ({"WSGISESSION_OPTIONS": ["x"]}, "must be a dict"),
        ({"WSGISESSION_OPTIONS": {"cookie_name": "x"}}, "set SESSION_COOKIE_NAME instead"),
        ({"WSGISESSION_OPTIONS": {"max_age": 5}}, "set SESSION_COOKIE_AGE instead"),
        ({"WSGISESSION_STORE": 42}, "WSGISESSION_STORE=42 is an int, neither a store URL"),
        (
            {"WSGISESSION_OPTIONS": ["x"]},
            r"WSGISESSION_OPTIONS=\['x'\] is a list; it must be a dict",
        ),
        (
            {"WSGISESSION_OPTIONS": {"colour": "red"}},
            r"\['colour'\] is not a wsgisession option; remove it, or use one of",
        ),
        (
            {"WSGISESSION_OPTIONS": {"absolute_timeout": "8h"}},
            r"WSGISESSION_OPTIONS\['absolute_timeout'\]: absolute_timeout='8h' is a str; give a "
            "whole number of seconds",
        ),
        (
            {"WSGISESSION_OPTIONS": {"touch_interval": 10**7}},
            r"WSGISESSION_OPTIONS\['touch_interval'\], SESSION_COOKIE_AGE: touch_interval=10000000 "
            "is longer than max_age=1209600",
        ),
        (
            {"WSGISESSION_OPTIONS": {"cookie_partitioned": True}},
            "Django has no setting for the Partitioned attribute; remove the option",
        ),
        ({"SESSION_COOKIE_DOMAIN": "example.com:8000"}, "SESSION_COOKIE_DOMAIN: cookie_domain="),
        ({"WSGISESSION_OPTIONS": {"cookie_partitioned": True}}, "SESSION_COOKIE_"),
        ({"WSGISESSION_OPTIONS": {"on_store_error": "shrug"}}, "on_store_error='shrug'"),
        ({"SESSION_COOKIE_AGE": 0}, "SESSION_COOKIE_AGE"),
        ({"SESSION_COOKIE_NAME": "__Host-sid"}, "needs cookie_secure=True.*SESSION_COOKIE_"),
        ({"SESSION_COOKIE_SAMESITE": "None"}, "needs cookie_secure=True.*SESSION_COOKIE_"),
    ],
)
def test_bad_settings_fail_with_a_clear_message(settings: dict[str, Any], message: str) -> None:
    """Settings that cannot work raise ImproperlyConfigured saying what to change."""
    with override_settings(**settings), pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()


def test_a_host_prefixed_secure_cookie_works(memory: CountingStore) -> None:
    """``SESSION_COOKIE_NAME="__Host-sid"`` with ``SESSION_COOKIE_SECURE=True`` is accepted."""
    with override_settings(SESSION_COOKIE_NAME="__Host-sid", SESSION_COOKIE_SECURE=True):
        client = Client()
        response = client.get("/set?k=v", secure=True)
        assert response.cookies["__Host-sid"]["secure"] is True
        assert client.get("/get", secure=True).json() == {"data": {"k": "v"}}


def test_a_cookie_path_of_its_own_still_saves_new_sessions(memory: CountingStore) -> None:
    """``SESSION_COOKIE_PATH="/app/"``: Django sets the cookie there, and the session is saved."""
    with override_settings(SESSION_COOKIE_PATH="/app/"):
        client = Client()
        response = client.get("/set?k=v")
        assert response.cookies[COOKIE]["path"] == "/app/"
        assert record_of(memory, response.cookies[COOKIE].value).data == {"k": "v"}


def test_a_cookie_store_is_refused(tmp_path: Path) -> None:
    """A store that keeps sessions in the cookie is refused, pointing to Django's own engine."""
    with (
        override_settings(WSGISESSION_STORE=CookieStore()),
        pytest.raises(ImproperlyConfigured, match="signed_cookies"),
    ):
        SessionStore()


@pytest.mark.parametrize(
    ("key", "value"),
    [("\ud800", 1), ("bad", "\udfff"), ("bad", 10**5000), ("bad", deep_list(10_000))],
    ids=["surrogate key", "surrogate value", "huge int", "deep list"],
)
def test_unwritable_values_fail_when_set_with_serialization_error(
    memory: CountingStore, key: str, value: Any
) -> None:
    """Issue 13.4: request.session[key] = value with what no store can write raises
    SerializationError naming the key when set; the session saves what it held."""
    from wsgisession import SerializationError

    session = SessionStore()
    session["kept"] = 1
    with pytest.raises(SerializationError, match=r"ud800|'bad'"):
        session[key] = value
    session.save()
    assert memory.writes == ["create"]
    assert dict(SessionStore(session.session_key).items()) == {"kept": 1}
