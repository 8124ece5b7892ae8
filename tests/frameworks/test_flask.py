"""wsgisession as Flask's own session, through Flask's test client.

``flask.session`` is a wsgisession session: Flask's ``SessionMixin`` attributes, ``flash()``,
``session_transaction()`` and Flask-Login work unchanged, and what wsgisession adds (ids the
server issued only, per-key merge, a new id at login, the outage policy) holds through Flask.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Clock
from tests.frameworks.conftest import need
from tests.support.app import OutageStore
from tests.support.servers import network_store
from tests.support.stores import deep_list
from wsgisession import (
    ConfigurationError,
    CookieStore,
    MemoryStore,
    Session,
    SqliteStore,
    Store,
)
from wsgisession.signing import hash_id
from wsgisession.testing import CountingStore

flask = need("flask")
flask_login = need("flask_login")

from flask import Flask, flash, get_flashed_messages, request  # noqa: E402
from flask.sessions import SessionMixin  # noqa: E402
from flask_login import (  # noqa: E402
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from markupsafe import Markup  # noqa: E402

import wsgisession  # noqa: E402
from wsgisession.integrations.flask import SessionInterface, init_app  # noqa: E402

SECRET = "flask-tests-secret-key"


class User(UserMixin):  # type: ignore[misc]
    """A Flask-Login user whose id is its name."""

    def __init__(self, name: str) -> None:
        self.id = name


def make_app(store: Store | None = None, *, login: bool = True, **options: Any) -> Flask:
    """A Flask app on wsgisession with the routes the tests drive (and Flask-Login)."""
    app = Flask("wsgisession_flask_tests")
    app.config.update(SECRET_KEY=SECRET, TESTING=True)
    app.session_interface = SessionInterface(store, **options)
    add_routes(app, login=login)
    return app


def add_routes(app: Flask, *, login: bool = True) -> None:
    """/set?k=v · /get?k= · /noop · /flash?m=&c= · /flashes · /attrs · /permanent · /cart?x= ·
    /clear · /values · /check-values · and, with Flask-Login, /login?u=&remember=1 · /me ·
    /logout."""
    session = flask.session

    @app.get("/set")
    def set_() -> str:
        for key, value in request.args.items():
            session[key] = value
        return "ok"

    @app.get("/get")
    def get() -> Any:
        return {key: session.get(key) for key in request.args}

    @app.get("/noop")
    def noop() -> str:
        return "nothing"

    @app.get("/flash")
    def flash_() -> str:
        flash(request.args["m"], request.args.get("c", "message"))
        return "flashed"

    @app.get("/flashes")
    def flashes() -> Any:
        messages = get_flashed_messages(with_categories=True)
        return {
            "tuples": all(type(m) is tuple for m in messages),
            "messages": [list(m) for m in messages],
        }

    @app.get("/attrs")
    def attrs() -> Any:
        if request.args.get("write"):
            session["w"] = 1
        return {
            "new": session.new,
            "modified": session.modified,
            "permanent": session.permanent,
            "accessed": session.accessed,
            "is_wsgisession": isinstance(session._get_current_object(), Session),
            "is_mixin": isinstance(session._get_current_object(), SessionMixin),
        }

    @app.get("/permanent")
    def permanent() -> str:
        session.permanent = request.args.get("on", "1") == "1"
        session["p"] = 1
        return "ok"

    @app.get("/cart")
    def cart() -> Any:
        session.setdefault("cart", []).append(request.args["x"])
        return {"cart": session["cart"]}

    @app.get("/clear")
    def clear() -> str:
        session.clear()
        if request.args.get("then"):
            session["then"] = request.args["then"]
        return "cleared"

    @app.get("/values")
    def values() -> str:
        session.update(VALUES)
        return "ok"

    @app.get("/check-values")
    def check_values() -> Any:
        return {key: session.get(key) == value for key, value in VALUES.items()}

    if not login:
        return
    manager = LoginManager(app)
    manager.user_loader(User)

    @app.get("/login")
    def login_() -> str:
        login_user(User(request.args["u"]), remember=bool(request.args.get("remember")))
        return "welcome"

    @app.get("/me")
    @login_required  # type: ignore[misc]
    def me() -> str:
        return str(current_user.id)

    @app.get("/logout")
    def logout() -> str:
        logout_user()
        return "bye"


#: wsgisession's tagged serializer (Flask's own until wsgisession's is merged).
TaggedJSONSerializer: Any = getattr(wsgisession, "TaggedJSONSerializer", None)
if TaggedJSONSerializer is None:
    from flask.json.tag import TaggedJSONSerializer

#: Values Flask's own session keeps today; the Flask integration's tagged serializer keeps them.
VALUES: dict[str, Any] = {
    "tuple": (1, "two"),
    "bytes": b"\x00\xffraw",
    "when": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "markup": Markup("<b>bold</b>"),
}
if hasattr(wsgisession, "TaggedJSONSerializer"):  # more than Flask's own serializer keeps
    VALUES.update(day=dt.date(2030, 1, 2), price=Decimal("9.99"))


def cookie_value(client: Any, name: str = "session") -> str | None:
    """The value of the test client's cookie *name*, or None."""
    cookie = client.get_cookie(name)
    return None if cookie is None else str(cookie.value)


def set_cookie_headers(response: Any, name: str = "session") -> list[str]:
    """The response's Set-Cookie headers for cookie *name*."""
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]


def attributes(header: str) -> dict[str, str]:
    """The attributes of one Set-Cookie header, lower-cased names."""
    found = {}
    for part in header.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        found[key.lower()] = value
    return found


@pytest.fixture
def counting() -> CountingStore:
    """A memory store that counts the calls made on it."""
    return CountingStore(MemoryStore())


# flask.session is a wsgisession session ---------------------------------------------------------


def test_flask_session_is_a_wsgisession_session_with_flask_attributes() -> None:
    """flask.session is a wsgisession Session and a SessionMixin, with new/modified/permanent."""
    client = make_app().test_client()
    first = client.get("/attrs?write=1").json
    assert first == {
        "new": True,
        "modified": True,
        "permanent": False,
        "accessed": True,
        "is_wsgisession": True,
        "is_mixin": True,
    }
    again = client.get("/attrs").json
    assert again["new"] is False and again["modified"] is False


def test_set_and_get_through_flask_session(counting: CountingStore) -> None:
    """A value set in one request comes back in the next; the store keeps a hash of the id."""
    client = make_app(counting).test_client()
    client.get("/set?name=alice")
    assert client.get("/get?name").json == {"name": "alice"}
    value = cookie_value(client)
    assert value is not None and "." in value  # id.signature: signed with SECRET_KEY
    session_id = value.split(".")[0]
    assert counting.inner.load(hash_id(session_id), time.time()) is not None
    assert counting.inner.load(session_id, time.time()) is None


def test_untouched_request_costs_nothing(counting: CountingStore) -> None:
    """A view that never touches the session: no store call, no Set-Cookie, no Vary."""
    client = make_app(counting, login=False).test_client()
    client.get("/set?a=1")
    counting.reset()
    response = client.get("/noop")
    assert counting.calls == []
    assert set_cookie_headers(response) == []
    assert "Cookie" not in response.headers.get("Vary", "")


def test_read_only_request_sets_no_cookie(counting: CountingStore) -> None:
    """A read-only request: one store call, Vary: Cookie, no Set-Cookie, no write."""
    client = make_app(counting, login=False).test_client()
    client.get("/set?a=1")
    counting.reset()
    response = client.get("/get?a")
    assert response.json == {"a": "1"}
    assert counting.calls == ["load"]
    assert set_cookie_headers(response) == []
    assert "Cookie" in response.headers["Vary"]


def test_the_apps_vary_and_cache_control_are_kept_and_amended(counting: CountingStore) -> None:
    """A view's own Vary gains Cookie (once) and its public Cache-Control becomes private when
    the session cookie is set; its other headers stay as the view wrote them, in order."""
    app = make_app(counting, login=False)

    @app.route("/cached")
    def cached() -> Any:
        flask.session["seen"] = True
        response = flask.make_response("ok")
        response.headers["Vary"] = "Accept-Encoding"
        response.headers["Cache-Control"] = "public, max-age=60"
        response.headers.add("X-Trace", "1")
        response.headers.add("X-Trace", "2")
        return response

    response = app.test_client().get("/cached")
    assert response.headers.getlist("Vary") == ["Accept-Encoding, Cookie"]
    assert response.headers["Cache-Control"] == "private, max-age=60"
    assert response.headers.getlist("X-Trace") == ["1", "2"]
    assert len(set_cookie_headers(response)) == 1


def test_a_request_leaves_no_more_garbage_than_flasks_own_session() -> None:
    """The session and the core's exchange are freed when the request ends: a request through
    the integration leaves the garbage collector no more than one through Flask's own cookie
    session (Flask's request context makes some of its own)."""
    import gc

    ours = make_app(login=False)
    flasks = Flask("flask_own_session")
    flasks.config.update(SECRET_KEY=SECRET, TESTING=True)
    add_routes(flasks, login=False)

    def cyclic_garbage(app: Flask, path: str) -> float:
        client = app.test_client()
        client.get("/set?a=1")
        gc.collect()
        gc.disable()
        try:
            for _ in range(10):
                client.get(path)
            return gc.collect() / 10
        finally:
            gc.enable()

    for path in ("/noop", "/get?a", "/set?a=2"):
        assert cyclic_garbage(ours, path) <= cyclic_garbage(flasks, path), path


def test_forged_cookie_gives_a_fresh_session(counting: CountingStore) -> None:
    """A forged or garbage cookie is never a 500 and never reaches the store."""
    client = make_app(counting, login=False).test_client()
    for forged in ["x" * 43 + ".sig", "garbage", "A" * 4000, "../../etc/passwd"]:
        client.set_cookie("session", forged)
        counting.reset()
        assert client.get("/get?a").json == {"a": None}
        assert counting.calls == []


def test_nested_change_is_saved_without_modified_flag() -> None:
    """session["cart"].append(x) is saved without setting session.modified."""
    client = make_app().test_client()
    client.get("/cart?x=book")
    assert client.get("/cart?x=pen").json == {"cart": ["book", "pen"]}
    assert client.get("/get?cart").json == {"cart": ["book", "pen"]}


def test_values_beyond_json_round_trip() -> None:
    """Tuples, bytes, datetimes, dates, UUIDs and Decimals come back as they went in."""
    client = make_app().test_client()
    client.get("/values")
    assert client.get("/check-values").json == {key: True for key in VALUES}


def test_values_beyond_json_on_every_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Flask's value types round-trip through each server store with the tagged serializer."""
    tagged = TaggedJSONSerializer()
    store: Store
    if store_kind == "memory":
        store = MemoryStore(serializer=tagged)
    elif store_kind == "sqlite":
        store = SqliteStore(tmp_path / "tagged.db", serializer=tagged)
    else:
        store = network_store(store_kind, request, serializer=tagged)
    client = make_app(store).test_client()
    client.get("/values")
    assert client.get("/check-values").json == {key: True for key in VALUES}


def test_changes_of_two_overlapping_requests_both_land() -> None:
    """Two overlapping requests of one session that set different keys both keep their key."""
    app = make_app()
    client = app.test_client()
    client.get("/set?start=1")
    with client.session_transaction() as first, client.session_transaction() as second:
        first["a"] = 1
        second["b"] = 2
    assert client.get("/get?a&b&start").json == {"a": 1, "b": 2, "start": "1"}


# Flask's own features --------------------------------------------------------------------------


def test_flash_with_categories_is_shown_once() -> None:
    """flash() and get_flashed_messages(with_categories=True) work, and show once."""
    client = make_app().test_client()
    client.get("/flash?m=Saved&c=info")
    client.get("/flash?m=Bad+input&c=error")
    assert client.get("/flashes").json == {
        "tuples": True,
        "messages": [["info", "Saved"], ["error", "Bad input"]],
    }
    assert client.get("/flashes").json["messages"] == []


def test_session_transaction_reads_and_writes() -> None:
    """The test client's session_transaction() sets what views read and reads what they set."""
    client = make_app().test_client()
    with client.session_transaction() as session:
        assert isinstance(session, Session)
        session["planted"] = "by the test"
    assert client.get("/get?planted").json == {"planted": "by the test"}
    client.get("/set?from_view=yes")
    with client.session_transaction() as session:
        assert session["from_view"] == "yes"
        assert session["planted"] == "by the test"


def test_clear_ends_the_old_session_id() -> None:
    """session.clear() (Flask's usual logout) leaves nothing behind under the old cookie."""
    app = make_app()
    client = app.test_client()
    client.get("/set?user=alice")
    old = cookie_value(client)
    response = client.get("/clear")
    assert any(
        "Max-Age=0" in h or "Expires=Thu, 01 Jan 1970" in h for h in set_cookie_headers(response)
    )
    replay = app.test_client()
    assert old is not None
    replay.set_cookie("session", old)
    assert replay.get("/get?user").json == {"user": None}


def test_clear_then_set_moves_to_a_new_id() -> None:
    """session.clear() then new keys (Flask's usual login) gives a new session id."""
    app = make_app()
    client = app.test_client()
    client.get("/set?cart=book")
    old = cookie_value(client)
    client.get("/clear?then=alice")
    new = cookie_value(client)
    assert new is not None and new != old
    assert client.get("/get?then&cart").json == {"then": "alice", "cart": None}
    replay = app.test_client()
    assert old is not None
    replay.set_cookie("session", old)
    assert replay.get("/get?then").json == {"then": None}


# Flask's configuration -------------------------------------------------------------------------


def test_session_cookie_settings_are_honoured() -> None:
    """SESSION_COOKIE_NAME/DOMAIN/PATH/HTTPONLY/SECURE/SAMESITE shape the cookie."""
    app = Flask("cookie_settings")
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.org",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
    )
    app.session_interface = SessionInterface()
    add_routes(app, login=False)
    response = app.test_client().get("/set?a=1", base_url="https://example.org/app/")
    (header,) = set_cookie_headers(response, "sid")
    found = attributes(header)
    assert found["domain"].lstrip(".") == "example.org"
    assert found["path"] == "/app"
    assert "httponly" not in found
    assert "secure" in found
    assert found["samesite"].lower() == "strict"


def test_no_session_is_started_outside_the_cookie_path() -> None:
    """Under SESSION_COOKIE_PATH=/app, a request to /set (outside it) stores no session."""
    counting = CountingStore(MemoryStore())
    app = make_app(counting, login=False)
    app.config["SESSION_COOKIE_PATH"] = "/app"
    outside = app.test_client().get("/set?a=1")
    assert set_cookie_headers(outside) == [] and counting.writes == []
    inside = app.test_client().get("/set?a=1", base_url="http://localhost/app/")
    assert len(set_cookie_headers(inside)) == 1 and counting.writes == ["create"]


def test_flask_defaults_give_safe_cookie_attributes() -> None:
    """Flask's defaults: HttpOnly, SameSite=Lax (wsgisession's default), Secure on HTTPS."""
    app = make_app(login=False)
    plain = app.test_client().get("/set?a=1")
    (header,) = set_cookie_headers(plain)
    found = attributes(header)
    assert "httponly" in found and found["samesite"].lower() == "lax" and "secure" not in found
    secure = app.test_client().get("/set?a=1", base_url="https://localhost/")
    (header,) = set_cookie_headers(secure)
    assert "secure" in attributes(header)


def test_partitioned_cookie(tmp_path: Path) -> None:
    """SESSION_COOKIE_PARTITIONED adds the Partitioned attribute."""
    app = Flask("partitioned")
    app.config.update(
        SECRET_KEY=SECRET,
        SESSION_COOKIE_PARTITIONED=True,
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="None",
    )
    app.session_interface = SessionInterface()
    add_routes(app, login=False)
    response = app.test_client().get("/set?a=1", base_url="https://localhost/")
    (header,) = set_cookie_headers(response)
    assert "partitioned" in attributes(header)


def test_partitioned_cookie_without_secure_names_both_settings() -> None:
    """SESSION_COOKIE_PARTITIONED without SESSION_COOKIE_SECURE fails at start, naming both."""
    app = Flask("partitioned-plain")
    app.config.update(SECRET_KEY=SECRET, SESSION_COOKIE_PARTITIONED=True)
    with pytest.raises(ConfigurationError) as info:
        init_app(app)
    assert "app.config['SESSION_COOKIE_PARTITIONED']" in str(info.value)
    assert "cookie_partitioned=True needs cookie_secure=True" in str(info.value)


def test_non_permanent_session_has_a_browser_session_cookie() -> None:
    """permanent=False (Flask's default): the cookie has no Max-Age and no Expires."""
    response = make_app(login=False).test_client().get("/set?a=1")
    (header,) = set_cookie_headers(response)
    found = attributes(header)
    assert "max-age" not in found and "expires" not in found


def test_permanent_session_lives_for_the_lifetime(clock: Clock) -> None:
    """permanent=True: the cookie lasts PERMANENT_SESSION_LIFETIME, and so does the session."""
    app = make_app(login=False, clock=clock)
    app.config["PERMANENT_SESSION_LIFETIME"] = dt.timedelta(hours=2)
    client = app.test_client()
    response = client.get("/permanent")
    (header,) = set_cookie_headers(response)
    assert attributes(header)["max-age"] == "7200"
    assert client.get("/attrs").json["permanent"] is True
    clock.advance(7100)
    assert client.get("/get?p").json == {"p": 1}
    clock.advance(7201)
    assert client.get("/get?p").json == {"p": None}


def test_lifetime_is_the_idle_timeout_of_every_session(clock: Clock) -> None:
    """A non-permanent session also ends PERMANENT_SESSION_LIFETIME after its last use."""
    app = make_app(login=False, clock=clock)
    app.config["PERMANENT_SESSION_LIFETIME"] = 600
    client = app.test_client()
    client.get("/set?a=1")
    clock.advance(599)
    assert client.get("/get?a").json == {"a": "1"}
    clock.advance(601)
    assert client.get("/get?a").json == {"a": None}


def test_refresh_each_request_is_throttled(counting: CountingStore, clock: Clock) -> None:
    """SESSION_REFRESH_EACH_REQUEST: activity keeps the session alive, with throttled writes."""
    app = make_app(counting, login=False, clock=clock)
    app.config["PERMANENT_SESSION_LIFETIME"] = 1000
    client = app.test_client()
    client.get("/permanent")
    counting.reset()
    for _ in range(5):
        clock.advance(10)
        client.get("/get?p")
    assert counting.writes == []  # within touch_interval (lifetime // 10): no refresh write
    for _ in range(12):
        clock.advance(150)
        assert client.get("/get?p").json == {"p": 1}  # kept alive well past 1000 s
    assert 0 < len(counting.writes) <= 12


def test_refresh_each_request_off_counts_from_the_last_change(clock: Clock) -> None:
    """SESSION_REFRESH_EACH_REQUEST=False: reads do not extend the session, changes do."""
    app = make_app(login=False, clock=clock)
    app.config.update(PERMANENT_SESSION_LIFETIME=1000, SESSION_REFRESH_EACH_REQUEST=False)
    client = app.test_client()
    client.get("/permanent")
    for _ in range(6):
        clock.advance(150)
        client.get("/get?p")
    clock.advance(150)
    assert client.get("/get?p").json == {"p": None}


def test_secret_key_fallbacks_rotate_without_logging_anyone_out() -> None:
    """A cookie signed with a key now in SECRET_KEY_FALLBACKS still opens its session."""
    store = MemoryStore()
    old_app = make_app(store, login=False)
    old_app.config["SECRET_KEY"] = "old key"
    client = old_app.test_client()
    client.get("/set?a=1")
    cookie = cookie_value(client)
    new_app = make_app(store, login=False)
    new_app.config.update(SECRET_KEY="new key", SECRET_KEY_FALLBACKS=["old key"])
    rotated = new_app.test_client()
    assert cookie is not None
    rotated.set_cookie("session", cookie)
    assert rotated.get("/get?a").json == {"a": "1"}
    rotated.get("/set?b=2")
    resigned = cookie_value(rotated)
    assert resigned is not None and resigned != cookie
    assert resigned.split(".")[0] == cookie.split(".")[0]  # same session, new signature
    dropped = make_app(store, login=False)
    dropped.config["SECRET_KEY"] = "new key"
    stranger = dropped.test_client()
    stranger.set_cookie("session", cookie)
    assert stranger.get("/get?a").json == {"a": None}


def test_without_secret_key_the_cookie_carries_the_bare_id() -> None:
    """No SECRET_KEY: sessions still work, the cookie carries the unsigned id."""
    app = make_app(login=False)
    app.config["SECRET_KEY"] = None
    client = app.test_client()
    client.get("/set?a=1")
    value = cookie_value(client)
    assert value is not None and "." not in value and len(value) == 43
    assert client.get("/get?a").json == {"a": "1"}


def test_cookie_store_needs_a_secret_key() -> None:
    """CookieStore without SECRET_KEY fails at the first request, naming SECRET_KEY."""
    app = make_app(CookieStore(), login=False)
    app.config["SECRET_KEY"] = None
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        app.test_client().get("/set?a=1")


def test_cookie_store_through_flask() -> None:
    """With CookieStore the whole session rides, sealed, in Flask's cookie."""
    client = make_app(CookieStore(serializer=TaggedJSONSerializer())).test_client()
    client.get("/set?a=1")
    client.get("/values")
    assert client.get("/check-values").json == {key: True for key in VALUES}
    assert client.get("/get?a").json == {"a": "1"}


# init_app --------------------------------------------------------------------------------------


def test_init_app_reads_the_store_url_and_options(tmp_path: Path) -> None:
    """init_app reads WSGISESSION_STORE and WSGISESSION_* options from app.config."""
    app = Flask("init_app")
    app.config.update(
        SECRET_KEY=SECRET,
        WSGISESSION_STORE=f"sqlite:///{tmp_path / 'flask.db'}",
        WSGISESSION_COOKIE_NAME="wsid",
        WSGISESSION_ABSOLUTE_TIMEOUT=3600,
        WSGISESSION_ON_STORE_ERROR="continue",
    )
    interface = init_app(app)
    assert app.session_interface is interface
    assert isinstance(interface.store, SqliteStore)
    add_routes(app)
    client = app.test_client()
    client.get("/set?a=1")
    assert cookie_value(client, "wsid") is not None
    assert client.get("/get?a").json == {"a": "1"}
    assert (tmp_path / "flask.db").exists()


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"WSGISESSION_STORE": "ftp://nowhere"}, "WSGISESSION_STORE"),
        ({"WSGISESSION_ON_STORE_ERROR": "ignore"}, "WSGISESSION_ON_STORE_ERROR"),
        ({"WSGISESSION_TOUCH_INTERVAL": "often"}, "WSGISESSION_TOUCH_INTERVAL"),
        ({"WSGISESSION_COOKIE_SAMESITE": "Sometimes"}, "WSGISESSION_COOKIE_SAMESITE"),
        ({"WSGISESSION_COOKIE_NAM": "typo"}, "WSGISESSION_COOKIE_NAM"),
        ({"PERMANENT_SESSION_LIFETIME": -5}, "PERMANENT_SESSION_LIFETIME"),
        ({"SESSION_COOKIE_SAMESITE": "Sometimes"}, "SESSION_COOKIE_SAMESITE"),
        ({"SESSION_COOKIE_NAME": "__Host-sid"}, "SESSION_COOKIE_NAME"),
    ],
)
def test_init_app_rejects_bad_config_naming_the_key(config: dict[str, Any], named: str) -> None:
    """A bad value fails at init_app, with a message that names the config key to fix."""
    app = Flask("bad_config")
    app.config.update(SECRET_KEY=SECRET, WSGISESSION_STORE="memory://")
    app.config.update(config)
    with pytest.raises(ConfigurationError, match=named):
        init_app(app)


def test_init_app_with_cookie_store_needs_secret_key() -> None:
    """init_app with CookieStore and no SECRET_KEY fails at once, naming SECRET_KEY."""
    app = Flask("no_key")
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        init_app(app, CookieStore())


def test_init_app_store_argument_and_bad_store() -> None:
    """init_app(app, store) takes a ready store; something else is refused at once."""
    app = Flask("store_arg")
    store = MemoryStore()
    assert init_app(app, store).store is store
    with pytest.raises(ConfigurationError, match="store"):
        SessionInterface("not a store or URL")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_age"):
        SessionInterface(max_age=0)
    with pytest.raises(TypeError, match="cookie_nam"):
        SessionInterface(cookie_nam="typo")


# Flask-Login -----------------------------------------------------------------------------------


def test_login_required_login_and_logout() -> None:
    """login_user opens login_required views; logout_user closes them again."""
    client = make_app().test_client()
    assert client.get("/me").status_code == 401
    client.get("/login?u=alice")
    assert client.get("/me").text == "alice"
    client.get("/logout")
    assert client.get("/me").status_code == 401


def test_login_moves_the_session_to_a_new_id(counting: CountingStore) -> None:
    """login_user gives the session a new id (no fixation), keeping its data."""
    app = make_app(counting)
    client = app.test_client()
    client.get("/set?cart=book")
    before = cookie_value(client)
    client.get("/login?u=alice")
    after = cookie_value(client)
    assert before is not None and after is not None and after != before
    assert client.get("/get?cart").json == {"cart": "book"}
    planted = app.test_client()
    planted.set_cookie("session", before)
    assert planted.get("/me").status_code == 401
    assert planted.get("/get?cart").json == {"cart": None}


def test_logout_leaves_no_way_back_with_the_old_cookie(store: Store) -> None:
    """After logout_user, the logged-in cookie replayed opens nothing, on every server store."""
    app = make_app(store)
    client = app.test_client()
    client.get("/set?cart=book")
    client.get("/login?u=alice")
    logged_in = cookie_value(client)
    assert client.get("/me").text == "alice"
    client.get("/logout")
    assert client.get("/me").status_code == 401
    replay = app.test_client()
    assert logged_in is not None
    replay.set_cookie("session", logged_in)
    assert replay.get("/me").status_code == 401
    assert replay.get("/get?cart").json == {"cart": None}


def test_remember_me_survives_the_browser_session_and_logout_forgets_it() -> None:
    """remember=True logs the user back in after the session cookie is gone; logout clears it."""
    client = make_app().test_client()
    client.get("/login?u=alice&remember=1")
    assert client.get_cookie("remember_token") is not None
    first = cookie_value(client)
    client.delete_cookie("session")  # the browser was closed
    assert client.get("/me").text == "alice"
    restored = cookie_value(client)
    assert restored is not None and restored != first
    client.get("/logout")
    assert client.get_cookie("remember_token") is None
    client.delete_cookie("session")
    assert client.get("/me").status_code == 401


def test_flask_login_binds_the_session_and_logout_unbinds_it(indexed: Store) -> None:
    """login_user binds the session to user.get_id(); logout_user takes it off the list."""
    app = make_app(indexed)
    laptop, phone = app.test_client(), app.test_client()
    laptop.get("/login?u=alice")
    assert len(wsgisession.user_sessions(indexed, "alice")) == 1
    phone.get("/login?u=alice")
    assert len(wsgisession.user_sessions(indexed, "alice")) == 2
    laptop.get("/logout")
    assert len(wsgisession.user_sessions(indexed, "alice")) == 1
    phone.get("/logout")
    assert wsgisession.user_sessions(indexed, "alice") == []
    assert phone.get("/me").status_code == 401


def test_revoke_user_ends_a_flask_login(indexed: Store) -> None:
    """wsgisession.revoke_user() (a password reset, say): the next request is anonymous."""
    app = make_app(indexed)
    client, other = app.test_client(), app.test_client()
    client.get("/set?cart=book")
    client.get("/login?u=alice")
    other.get("/login?u=bob")
    assert client.get("/me").text == "alice"
    assert wsgisession.revoke_user(indexed, "alice") == 1
    assert client.get("/me").status_code == 401
    assert client.get("/get?cart").json == {"cart": None}
    assert wsgisession.user_sessions(indexed, "alice") == []
    assert other.get("/me").text == "bob"


def test_remember_me_restore_binds_the_new_session() -> None:
    """A login restored from the remember-me cookie is bound too: it can be revoked."""
    store = MemoryStore()
    client = make_app(store).test_client()
    client.get("/login?u=alice&remember=1")
    client.delete_cookie("session")  # the browser was closed
    assert client.get("/me").text == "alice"
    assert len(wsgisession.user_sessions(store, "alice")) == 2  # the closed one lives on
    assert wsgisession.revoke_user(store, "alice") == 2
    client.delete_cookie("remember_token")
    assert client.get("/me").status_code == 401


def _agent(environ: Any) -> dict[str, str]:
    return {"agent": environ.get("HTTP_USER_AGENT", "")}


def _browser(app: Flask, agent: str) -> Any:
    """A test client whose requests carry the User-Agent *agent*."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def test_describe_from_the_config_is_kept_with_a_login() -> None:
    """WSGISESSION_DESCRIBE (or SessionInterface(describe=...)) describes each login's client."""
    store = MemoryStore()
    app = Flask("wsgisession_flask_describe")
    app.config.update(SECRET_KEY=SECRET, WSGISESSION_DESCRIBE=_agent)
    init_app(app, store)
    add_routes(app)
    client = _browser(app, "FlaskBrowser/1")
    client.get("/set?k=v")  # bound to no one: nothing described
    client.get("/login?u=alice")
    (info,) = wsgisession.user_sessions(store, "alice")
    assert info.info == {"agent": "FlaskBrowser/1"}
    plain = _browser(make_app(store), "FlaskBrowser/1")
    plain.get("/login?u=bob")
    assert [i.info for i in wsgisession.user_sessions(store, "bob")] == [{}]
    direct = _browser(make_app(store, describe=_agent), "Direct/2")
    direct.get("/login?u=carol")
    assert [i.info for i in wsgisession.user_sessions(store, "carol")] == [{"agent": "Direct/2"}]


# The outage policy -----------------------------------------------------------------------------


@pytest.fixture
def flaky() -> Iterator[OutageStore]:
    """A memory store that fails like a server that went away while ``down`` is set."""
    yield OutageStore(MemoryStore())


def test_store_outage_gives_a_503_with_retry_after(flaky: OutageStore) -> None:
    """on_store_error="error": a store that is down gives Flask's response a 503 + Retry-After."""
    client = make_app(flaky).test_client()
    client.get("/set?a=1")
    flaky.down = True
    response = client.get("/get?a")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert set_cookie_headers(response) == []
    assert "Traceback" not in response.text
    write = client.get("/set?b=2")  # the store fails while saving: a 503 too
    assert write.status_code == 503 and set_cookie_headers(write) == []


def test_store_outage_can_be_answered_by_the_app(flaky: OutageStore) -> None:
    """The 503 is an HTTPException, so an app's own errorhandler(503) page is used."""
    app = make_app(flaky)

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return "come back soon", 503

    client = app.test_client()
    client.get("/set?a=1")
    flaky.down = True
    response = client.get("/get?a")
    assert response.status_code == 503 and response.text == "come back soon"
    assert response.headers["Retry-After"] == "5"


def test_store_outage_continue_serves_an_empty_session(flaky: OutageStore) -> None:
    """on_store_error="continue": the view runs with an empty session that is not saved."""
    client = make_app(flaky, on_store_error="continue").test_client()
    client.get("/set?a=1")
    flaky.down = True
    response = client.get("/get?a")
    assert response.status_code == 200 and response.json == {"a": None}
    assert set_cookie_headers(response) == []
    flaky.down = False
    assert client.get("/get?a").json == {"a": "1"}


def test_failed_request_saves_nothing(counting: CountingStore) -> None:
    """A view that raises saves nothing and sends no cookie."""
    app = make_app(counting, login=False)
    app.config["TESTING"] = False

    @app.get("/boom")
    def boom() -> str:
        flask.session["lost"] = True
        raise RuntimeError("boom")

    client = app.test_client()
    response = client.get("/boom")
    assert response.status_code == 500
    assert counting.writes == [] and set_cookie_headers(response) == []


# Under gunicorn --------------------------------------------------------------------------------


def test_flask_example_under_gunicorn_shares_sessions_across_workers(tmp_path: Path) -> None:
    """examples/flask_app.py under gunicorn, 2 workers on SQLite: one session across workers."""
    import re

    import requests

    from tests.support.servers import serve

    env = {"WSGISESSION_STORE": f"sqlite:///{tmp_path}/flask.db", "WSGISESSION_SECRET": "k1,k0"}
    with serve("flask_app:app", env, tmp_path, workers=2) as server:
        browser = requests.Session()
        pages = [browser.get(server.url + "/", timeout=10).text for _ in range(6)]
        assert "Visit number 6." in pages[-1]
        match = re.search(r'name="csrf_token" value="([^"]+)"', pages[-1])
        assert match is not None
        saved = browser.post(
            server.url + "/name", {"name": "Ada", "csrf_token": match.group(1)}, timeout=10
        )
        assert "Hello, Ada!" in saved.text and "Saved your name, Ada." in saved.text
        old = browser.cookies["session"]
        page = browser.get(server.url + "/", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        browser.post(server.url + "/forget", {"csrf_token": token.group(1)}, timeout=10)
        stranger = requests.Session()
        stranger.cookies.set("session", old)
        assert "Who are you?" in stranger.get(server.url + "/", timeout=10).text


#: Issue 13.4: what no store can write, each refused when the view sets it.
UNWRITABLE = {
    "surrogate key": lambda s: s.__setitem__("\ud800", 1),
    "surrogate value": lambda s: s.__setitem__("bad", "\udfff"),
    "huge int": lambda s: s.__setitem__("bad", 10**5000),
    "deep list": lambda s: s.__setitem__("bad", deep_list(10_000)),
    "increment": lambda s: s.increment("bad", 10**5000),
}


@pytest.mark.parametrize("spoil", UNWRITABLE.values(), ids=UNWRITABLE.keys())
def test_unwritable_values_fail_in_the_view_with_serialization_error(spoil: Any) -> None:
    """Issue 13.4: through Flask, an unwritable key or value raises SerializationError in the
    view, naming the key; the response and the stored session are fine."""
    app = make_app(MemoryStore())

    @app.get("/spoil")
    def spoil_view() -> str:
        flask.session["kept"] = 1
        try:
            spoil(flask.session)
        except wsgisession.SerializationError as exc:
            return str(exc)
        return "accepted"

    browser = app.test_client()
    response = browser.get("/spoil")
    assert response.status_code == 200
    assert "\\ud800" in response.text or "'bad'" in response.text
    assert browser.get("/get?kept=").status_code == 200
