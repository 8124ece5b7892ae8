"""wsgisession as Pyramid's own session, through webtest.

``request.session`` is a wsgisession session providing all of ``pyramid.interfaces.ISession``;
Pyramid's ``SessionAuthenticationHelper``, ``SessionCSRFStoragePolicy`` and flash messages work
on it, and a logout leaves no way back in with the old cookie on any server store.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import webtest

import wsgisession
from tests.conftest import Clock
from tests.frameworks.conftest import need
from tests.support.app import OutageStore
from wsgisession import ConfigurationError, MemoryStore, Session, SqliteStore, Store
from wsgisession.signing import hash_id
from wsgisession.testing import CountingStore

need("pyramid")

from pyramid.config import Configurator  # noqa: E402
from pyramid.csrf import SessionCSRFStoragePolicy  # noqa: E402
from pyramid.interfaces import ISession  # noqa: E402
from pyramid.request import Request  # noqa: E402
from pyramid.response import Response  # noqa: E402
from pyramid.security import forget, remember  # noqa: E402
from zope.interface.verify import verifyObject  # noqa: E402

from tests.support.pyramid_policy import SecurityPolicy  # noqa: E402
from tests.support.stores import deep_list  # noqa: E402
from wsgisession.integrations import pyramid as integration  # noqa: E402
from wsgisession.integrations.pyramid import session_factory  # noqa: E402


def routes(config: Configurator) -> None:
    """/set?k=v · /get?k= · /noop · /iface · /flash?m=&q= · /peek?q= · /pop?q= · /invalidate ·
    /cart?x= · /login?u= · /private · /logout · /csrf (token) · /form (POST, CSRF checked)."""

    def view(name: str, **kw: Any) -> Any:
        def decorate(func: Any) -> Any:
            config.add_route(name, "/" + name)
            config.add_view(func, route_name=name, renderer="json", **kw)
            return func

        return decorate

    @view("set")
    def set_(request: Request) -> Any:
        for key, value in request.GET.items():
            request.session[key] = value
        return "ok"

    @view("get")
    def get(request: Request) -> Any:
        return {key: request.session.get(key) for key in request.GET}

    @view("noop")
    def noop(request: Request) -> Any:
        return "nothing"

    @view("iface")
    def iface(request: Request) -> Any:
        session = request.session
        return {
            "verified": verifyObject(ISession, session),
            "wsgisession": isinstance(session, Session),
            "new": session.new,
            "created": session.created,
        }

    @view("flash")
    def flash(request: Request) -> Any:
        request.session.flash(
            request.GET["m"], request.GET.get("q", ""), allow_duplicate=not request.GET.get("once")
        )
        return "ok"

    @view("peek")
    def peek(request: Request) -> Any:
        return request.session.peek_flash(request.GET.get("q", ""))

    @view("pop")
    def pop(request: Request) -> Any:
        return request.session.pop_flash(request.GET.get("q", ""))

    @view("invalidate")
    def invalidate(request: Request) -> Any:
        request.session.invalidate()
        if "then" in request.GET:
            request.session["then"] = request.GET["then"]
        return "ok"

    @view("cart")
    def cart(request: Request) -> Any:
        request.session.setdefault("cart", []).append(request.GET["x"])
        request.session.changed()
        return request.session["cart"]

    @view("tokens")
    def tokens(request: Request) -> Any:
        session = request.session
        first = session.get_csrf_token()
        same = session.get_csrf_token()
        fresh = session.new_csrf_token()
        return {"stable": first == same, "renewed": fresh != first, "now": session.get_csrf_token()}

    @view("login")
    def login(request: Request) -> Any:
        if not request.GET.get("keep_id"):
            request.session.regenerate()  # a new id at login: no fixation
        request.response.headers.extend(remember(request, request.GET["u"]))
        return "welcome"

    @view("private", permission="view")
    def private(request: Request) -> Any:
        return request.authenticated_userid

    @view("logout")
    def logout(request: Request) -> Any:
        request.response.headers.extend(forget(request))
        return "bye"

    @view("csrf")
    def csrf(request: Request) -> Any:
        from pyramid.csrf import get_csrf_token

        return get_csrf_token(request)

    @view("form", request_method="POST")
    def form(request: Request) -> Any:
        return "accepted"


def make_app(
    store: Store | None = None, csrf_key: str | None = None, helper: Any = None, **options: Any
) -> Any:
    """A Pyramid app on wsgisession's session factory, with session auth and session CSRF."""
    with Configurator() as config:
        config.set_session_factory(session_factory(store, **options))
        config.set_security_policy(SecurityPolicy(helper))
        policy = (
            SessionCSRFStoragePolicy() if csrf_key is None else SessionCSRFStoragePolicy(csrf_key)
        )
        config.set_csrf_storage_policy(policy)
        config.set_default_csrf_options(require_csrf=True)
        routes(config)
        return config.make_wsgi_app()


def client(app: Any) -> webtest.TestApp:
    return webtest.TestApp(app, extra_environ={"HTTP_HOST": "localhost"})


def session_cookie(response: webtest.TestResponse, name: str = "wsgisession") -> str | None:
    for header in response.headers.getall("Set-Cookie"):
        if header.startswith(name + "="):
            return header.split(";")[0].split("=", 1)[1]
    return None


# ISession ----------------------------------------------------------------------------------------


def test_session_provides_all_of_isession(clock: Clock) -> None:
    """request.session passes verifyObject(ISession), with created and new."""
    browser = client(make_app(clock=clock))
    first = browser.get("/iface").json
    assert first == {"verified": True, "wsgisession": True, "new": True, "created": int(clock.now)}
    browser.get("/set?a=1")
    clock.advance(30)
    again = browser.get("/iface").json
    assert again["new"] is False
    assert again["created"] == int(clock.now) - 30


def test_set_get_and_the_store_keeps_a_hash() -> None:
    """Values set in one request come back in the next; the store knows the id's hash only."""
    counting = CountingStore(MemoryStore())
    browser = client(make_app(counting, secret_keys="k1"))
    response = browser.get("/set?name=alice")
    value = session_cookie(response)
    assert value is not None and "." in value
    session_id = value.split(".")[0]
    assert counting.inner.load(hash_id(session_id), time.time()) is not None
    assert browser.get("/get?name").json == {"name": "alice"}


@pytest.mark.parametrize("path", ["/noop", "/get?a", "/set?a=2"])
def test_a_request_leaves_no_more_garbage_than_pyramids_own_session(path: str) -> None:
    """The session and the core's exchange are freed when the request ends, by reference
    counting: a request leaves the garbage collector no more than the same request on
    Pyramid's own signed-cookie session (WebOb's request.GET makes a cycle of its own)."""
    import gc

    from pyramid.session import SignedCookieSessionFactory

    def app_with(factory: Any) -> Any:
        with Configurator() as config:
            config.set_session_factory(factory)
            config.set_security_policy(SecurityPolicy(None))
            routes(config)
            return config.make_wsgi_app()

    def cyclic_garbage(app: Any, cookie_name: str) -> float:
        cookie = session_cookie(client(app).get("/set?a=1"), cookie_name)
        assert cookie is not None
        environ = {
            "REQUEST_METHOD": "GET",
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "HTTP_HOST": "localhost",
            "wsgi.url_scheme": "http",
            "HTTP_COOKIE": f"{cookie_name}={cookie}",
        }
        route, _, query = path.partition("?")

        def request() -> None:
            body = app({**environ, "PATH_INFO": route, "QUERY_STRING": query}, lambda *a: None)
            list(body)
            getattr(body, "close", lambda: None)()

        request()
        gc.collect()
        gc.disable()
        try:
            for _ in range(10):
                request()
            return gc.collect() / 10
        finally:
            gc.enable()

    ours = cyclic_garbage(app_with(session_factory(MemoryStore())), "wsgisession")
    assert ours <= cyclic_garbage(app_with(SignedCookieSessionFactory("s" * 32)), "session")


def test_untouched_and_read_only_requests() -> None:
    """Untouched: no store call, no cookie, no Vary. Read only: one load, Vary, no cookie."""
    counting = CountingStore(MemoryStore())
    browser = client(make_app(counting))
    browser.get("/set?a=1")
    counting.reset()
    untouched = browser.get("/noop")
    assert counting.calls == []
    assert "Set-Cookie" not in untouched.headers
    assert "Cookie" not in untouched.headers.get("Vary", "")
    read = browser.get("/get?a")
    assert counting.calls == ["load"]
    assert "Set-Cookie" not in read.headers
    assert "Cookie" in read.headers["Vary"]


def test_default_cookie_attributes() -> None:
    """The cookie is HttpOnly, SameSite=Lax, Path=/, Secure only over HTTPS."""
    app = make_app()
    plain = client(app).get("/set?a=1").headers["Set-Cookie"]
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Path=/" in plain
    assert "secure" not in plain.lower()
    secure = client(app).get("/set?a=1", extra_environ={"wsgi.url_scheme": "https"})
    assert "secure" in secure.headers["Set-Cookie"].lower()


def test_no_session_is_started_outside_the_cookie_path() -> None:
    """With cookie_path="/app", a session set under /set is not stored; under /app/set it is."""
    counting = CountingStore(MemoryStore())
    app = make_app(counting, cookie_path="/app")
    outside = client(app).get("/set?a=1")
    assert "Set-Cookie" not in outside.headers and counting.writes == []
    inside = client(app).get("/set?a=1", extra_environ={"SCRIPT_NAME": "/app"})
    assert "Path=/app" in inside.headers["Set-Cookie"] and counting.writes == ["create"]


def test_invalidate_ends_the_session() -> None:
    """invalidate(): the record goes, the cookie is expired, the old cookie opens nothing."""
    app = make_app()
    browser = client(app)
    browser.get("/set?user=alice")
    old = browser.cookies["wsgisession"]
    response = browser.get("/invalidate")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    replay = client(app)
    replay.set_cookie("wsgisession", old)
    assert replay.get("/get?user").json == {"user": None}


def test_invalidate_then_set_starts_a_new_session() -> None:
    """Data set after invalidate() goes to a brand-new session with a new id."""
    browser = client(make_app())
    browser.get("/set?cart=book")
    old = browser.cookies["wsgisession"]
    response = browser.get("/invalidate?then=fresh")
    new = session_cookie(response)
    assert new is not None and new != old
    assert browser.get("/get?then&cart").json == {"then": "fresh", "cart": None}


def test_nested_change_is_saved() -> None:
    """A list changed in place is saved (changed() is accepted, and not needed)."""
    browser = client(make_app())
    browser.get("/cart?x=book")
    assert browser.get("/cart?x=pen").json == ["book", "pen"]
    assert browser.get("/get?cart").json == {"cart": ["book", "pen"]}


def test_flash_queues() -> None:
    """flash / peek_flash / pop_flash with queues and allow_duplicate=False."""
    browser = client(make_app())
    browser.get("/flash?m=hello")
    browser.get("/flash?m=hello&once=1")
    browser.get("/flash?m=oops&q=error")
    assert browser.get("/peek").json == ["hello"]
    assert browser.get("/peek?q=error").json == ["oops"]
    assert browser.get("/pop").json == ["hello"]
    assert browser.get("/pop").json == []
    assert browser.get("/pop?q=error").json == ["oops"]


def test_session_csrf_token_methods() -> None:
    """get_csrf_token() is stable until new_csrf_token() replaces it."""
    browser = client(make_app())
    tokens = browser.get("/tokens").json
    assert tokens["stable"] and tokens["renewed"]
    assert browser.get("/tokens").json["stable"]


# Pyramid's helpers on the session ----------------------------------------------------------------


def test_session_authentication_login_and_logout() -> None:
    """SessionAuthenticationHelper: remember() opens protected views, forget() closes them."""
    browser = client(make_app())
    assert browser.get("/private", expect_errors=True).status_int == 403
    browser.get("/login?u=alice")
    assert browser.get("/private").json == "alice"
    browser.get("/logout")
    assert browser.get("/private", expect_errors=True).status_int == 403


def test_login_moves_the_session_to_a_new_id() -> None:
    """regenerate() at login: a planted cookie is never authenticated."""
    app = make_app()
    browser = client(app)
    browser.get("/set?cart=book")
    planted = browser.cookies["wsgisession"]
    browser.get("/login?u=alice")
    assert browser.cookies["wsgisession"] != planted
    attacker = client(app)
    attacker.set_cookie("wsgisession", planted)
    assert attacker.get("/private", expect_errors=True).status_int == 403


def test_logout_leaves_no_way_back_with_the_old_cookie(store: Store) -> None:
    """After forget(), the logged-in cookie replayed is not authenticated, on every store."""
    app = make_app(store)
    browser = client(app)
    browser.get("/login?u=alice")
    logged_in = browser.cookies["wsgisession"]
    assert browser.get("/private").json == "alice"
    browser.get("/logout")
    replay = client(app)
    replay.set_cookie("wsgisession", logged_in)
    assert replay.get("/private", expect_errors=True).status_int == 403


def test_wsgisession_helper_moves_the_session_at_login_and_logout(store: Store) -> None:
    """wsgisession's SessionAuthenticationHelper gives new ids at remember() and forget()."""
    app = make_app(store, helper=integration.SessionAuthenticationHelper())
    browser = client(app)
    browser.get("/set?cart=book")
    planted = browser.cookies["wsgisession"]
    browser.get("/login?u=alice&keep_id=1")  # the view does not regenerate: the helper does
    logged_in = browser.cookies["wsgisession"]
    assert logged_in != planted
    assert browser.get("/private").json == "alice"
    browser.get("/logout")
    assert browser.cookies["wsgisession"] != logged_in
    assert browser.get("/get?cart").json == {"cart": "book"}  # the rest of the session is kept
    for old in (planted, logged_in):
        replay = client(app)
        replay.set_cookie("wsgisession", old)
        assert replay.get("/private", expect_errors=True).status_int == 403
        assert replay.get("/get?cart").json == {"cart": None}


def test_wsgisession_helper_binds_at_remember_and_unbinds_at_forget(indexed: Store) -> None:
    """remember() binds the session to str(userid), so it is listed; forget() takes it off."""
    app = make_app(indexed, helper=integration.SessionAuthenticationHelper())
    laptop, phone = client(app), client(app)
    laptop.get("/login?u=alice&keep_id=1")
    phone.get("/login?u=alice&keep_id=1")
    assert len(wsgisession.user_sessions(indexed, "alice")) == 2
    laptop.get("/logout")
    assert len(wsgisession.user_sessions(indexed, "alice")) == 1
    assert laptop.get("/private", expect_errors=True).status_int == 403
    assert phone.get("/private").json == "alice"


def test_revoke_user_ends_a_pyramid_login(indexed: Store) -> None:
    """wsgisession.revoke_user() ends the remembered login: the next request is anonymous."""
    app = make_app(indexed, helper=integration.SessionAuthenticationHelper())
    browser, other = client(app), client(app)
    browser.get("/set?cart=book")
    browser.get("/login?u=alice&keep_id=1")
    other.get("/login?u=bob&keep_id=1")
    assert browser.get("/private").json == "alice"
    assert wsgisession.revoke_user(indexed, "alice") == 1
    assert browser.get("/private", expect_errors=True).status_int == 403
    assert browser.get("/get?cart").json == {"cart": None}
    assert other.get("/private").json == "bob"


def describe_agent(environ: Any) -> dict[str, str]:
    """A describe hook: the user agent."""
    return {"agent": environ.get("HTTP_USER_AGENT", "")}


def test_describe_is_kept_with_a_remembered_login() -> None:
    """session_factory(describe=...) describes the client of each remember(), and only then."""
    store = MemoryStore()
    app = make_app(store, helper=integration.SessionAuthenticationHelper(), describe=describe_agent)
    browser = webtest.TestApp(
        app, extra_environ={"HTTP_HOST": "localhost", "HTTP_USER_AGENT": "PyramidBrowser/1"}
    )
    browser.get("/set?k=v")
    browser.get("/login?u=alice&keep_id=1")
    (info,) = wsgisession.user_sessions(store, "alice")
    assert info.info == {"agent": "PyramidBrowser/1"}


def test_includeme_resolves_a_dotted_describe() -> None:
    """wsgisession.describe in the .ini settings is the dotted name of the hook."""
    from pyramid.interfaces import ISessionFactory

    with Configurator(settings={"wsgisession.describe": f"{__name__}:describe_agent"}) as config:
        config.include("wsgisession.integrations.pyramid")
    factory = config.registry.queryUtility(ISessionFactory)
    assert factory.core.describe is describe_agent
    with pytest.raises(ConfigurationError, match=r"wsgisession\.describe = 'nowhere:nothing'"):
        included({"wsgisession.describe": "nowhere:nothing"})


def test_session_csrf_storage_policy() -> None:
    """SessionCSRFStoragePolicy: a POST without the session's token is refused, with it passes."""
    browser = client(make_app())
    token = browser.get("/csrf").json
    assert browser.post("/form", {"x": "1"}, expect_errors=True).status_int == 400
    assert browser.post("/form", {"csrf_token": "wrong"}, expect_errors=True).status_int == 400
    assert browser.post("/form", {"csrf_token": token}).json == "accepted"


def test_csrf_policy_on_wsgisession_token_is_renewed_at_login() -> None:
    """SessionCSRFStoragePolicy("_csrf_token") shares wsgisession's token: login renews it."""
    browser = client(make_app(csrf_key="_csrf_token"))
    before = browser.get("/csrf").json
    browser.get("/login?u=alice")
    after = browser.get("/csrf").json
    assert after != before
    assert browser.post("/form", {"csrf_token": before}, expect_errors=True).status_int == 400
    assert browser.post("/form", {"csrf_token": after}).json == "accepted"


# The outage policy -------------------------------------------------------------------------------


def test_store_outage_gives_a_503_with_retry_after() -> None:
    """on_store_error="error": Pyramid answers 503 with Retry-After and no Set-Cookie."""
    flaky = OutageStore(MemoryStore())
    browser = client(make_app(flaky))
    browser.get("/set?a=1")
    flaky.down = True
    response = browser.get("/get?a", expect_errors=True)
    assert response.status_int == 503
    assert response.headers["Retry-After"] == "5"
    assert "Set-Cookie" not in response.headers
    write = browser.get("/set?b=2", expect_errors=True)
    assert write.status_int == 503 and "Set-Cookie" not in write.headers


def test_store_outage_page_from_an_exception_view() -> None:
    """An exception view for StoreUnavailable renders the 503; Retry-After is added to it."""
    flaky = OutageStore(MemoryStore())
    with Configurator() as config:
        config.set_session_factory(session_factory(flaky))
        routes(config)
        config.add_exception_view(
            lambda exc, request: Response("come back soon", status=503),
            context=integration.StoreUnavailable,
        )
        app = config.make_wsgi_app()
    browser = client(app)
    browser.get("/set?a=1")
    flaky.down = True
    response = browser.get("/get?a", expect_errors=True)
    assert response.status_int == 503 and response.text == "come back soon"
    assert response.headers["Retry-After"] == "5"
    assert "Set-Cookie" not in response.headers


def test_store_outage_continue_serves_an_empty_session() -> None:
    """on_store_error="continue": the view runs with an empty session that is not saved."""
    flaky = OutageStore(MemoryStore())
    browser = client(make_app(flaky, on_store_error="continue"))
    browser.get("/set?a=1")
    flaky.down = True
    response = browser.get("/get?a")
    assert response.json == {"a": None} and "Set-Cookie" not in response.headers
    flaky.down = False
    assert browser.get("/get?a").json == {"a": "1"}


# includeme and the .ini settings -----------------------------------------------------------------


def included(settings: dict[str, str]) -> Any:
    """An app configured by config.include() from .ini-style (all string) settings."""
    with Configurator(settings=settings) as config:
        config.include("wsgisession.integrations.pyramid")
        config.set_security_policy(SecurityPolicy())
        routes(config)
        return config.make_wsgi_app()


def test_includeme_reads_the_settings(tmp_path: Path) -> None:
    """config.include() reads wsgisession.store and wsgisession.* with their types."""
    app = included(
        {
            "wsgisession.store": f"sqlite:///{tmp_path / 'pyramid.db'}",
            "wsgisession.secret_keys": "newest\nolder",
            "wsgisession.cookie_name": "sid",
            "wsgisession.cookie_httponly": "false",
            "wsgisession.max_age": "3600",
            "wsgisession.on_store_error": "continue",
            "unrelated.setting": "left alone",
        }
    )
    browser = client(app)
    response = browser.get("/set?a=1")
    header = response.headers["Set-Cookie"]
    assert header.startswith("sid=") and "HttpOnly" not in header and "Max-Age=3600" in header
    assert browser.get("/get?a").json == {"a": "1"}
    assert (tmp_path / "pyramid.db").exists()


def test_includeme_reads_cookie_partitioned() -> None:
    """wsgisession.cookie_partitioned = true (with cookie_secure = true) adds Partitioned."""
    app = included({"wsgisession.cookie_partitioned": "true", "wsgisession.cookie_secure": "true"})
    response = client(app).get("/set?a=1", extra_environ={"wsgi.url_scheme": "https"})
    assert response.headers["Set-Cookie"].endswith("; Partitioned")


def test_includeme_shares_sessions_signed_with_an_older_key(tmp_path: Path) -> None:
    """A cookie signed with an older key listed in wsgisession.secret_keys is still accepted."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    old = client(included({"wsgisession.store": url, "wsgisession.secret_keys": "older"}))
    old.get("/set?a=1")
    new = client(included({"wsgisession.store": url, "wsgisession.secret_keys": "newest older"}))
    new.set_cookie("wsgisession", old.cookies["wsgisession"])
    assert new.get("/get?a").json == {"a": "1"}


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"wsgisession.max_age": "two weeks"}, "wsgisession.max_age"),
        ({"wsgisession.cookie_httponly": "perhaps"}, "wsgisession.cookie_httponly"),
        ({"wsgisession.cookie_secure": "sometimes"}, "wsgisession.cookie_secure"),
        ({"wsgisession.cookie_samesite": "Sometimes"}, "wsgisession.cookie_samesite"),
        ({"wsgisession.on_store_error": "ignore"}, "wsgisession.on_store_error"),
        ({"wsgisession.store": "ftp://nowhere"}, "wsgisession.store"),
        ({"wsgisession.cookie_nam": "typo"}, "wsgisession.cookie_nam"),
        ({"wsgisession.max_age": "-1"}, "wsgisession.max_age"),
        ({"wsgisession.cookie_partitioned": "true"}, "wsgisession.cookie_partitioned"),
        ({"wsgisession.touch_interval": "9999999999"}, "wsgisession.touch_interval"),
    ],
)
def test_includeme_rejects_bad_settings_naming_the_key(
    settings: dict[str, str], named: str
) -> None:
    """A bad setting fails at config.include(), naming the setting to fix."""
    with pytest.raises(ConfigurationError, match=named.replace(".", r"\.")):
        included(settings)


def test_session_factory_rejects_bad_options() -> None:
    """session_factory() checks its options when it is made."""
    with pytest.raises(ConfigurationError, match="store"):
        session_factory("not a store")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_age"):
        session_factory(max_age=0)
    with pytest.raises(TypeError, match="cookie_nam"):
        session_factory(cookie_nam="typo")


def test_session_factory_takes_a_store_url(tmp_path: Path) -> None:
    """session_factory("sqlite:///...") builds the store from its URL."""
    factory = session_factory(f"sqlite:///{tmp_path / 'url.db'}")
    assert isinstance(factory.store, SqliteStore)


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s.__setitem__("\ud800", 1),
        lambda s: s.__setitem__("bad", "\udfff"),
        lambda s: s.__setitem__("bad", 10**5000),
        lambda s: s.__setitem__("bad", deep_list(10_000)),
        lambda s: s.flash("\udfff", queue="bad"),
    ],
    ids=["surrogate key", "surrogate value", "huge int", "deep list", "flash"],
)
def test_unwritable_values_fail_in_the_view_with_serialization_error(spoil: Any) -> None:
    """Issue 13.4: through Pyramid, an unwritable key or value raises SerializationError in the
    view, naming the key, never a 500 from the response callback."""
    from pyramid.response import Response

    from wsgisession import SerializationError

    def view(request: Any) -> Any:
        request.session["kept"] = 1
        try:
            spoil(request.session)
        except SerializationError as exc:
            return Response(str(exc))
        return Response("accepted")

    with Configurator() as config:
        config.set_session_factory(session_factory(MemoryStore()))
        config.add_route("spoil", "/spoil")
        config.add_view(view, route_name="spoil")
        app = config.make_wsgi_app()
    response = client(app).get("/spoil")
    assert "\\ud800" in response.text or "bad" in response.text
    assert session_cookie(response) is not None  # the rest of the session was saved
