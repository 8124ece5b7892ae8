"""CookieStore: the whole session encrypted in the cookie (SECURITY.md section E and more)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import webtest

from tests.conftest import Clock
from tests.support.app import app
from tests.support.clients import cookie_attributes, session_cookie, set_cookies
from wsgisession import (
    ClientSideStore,
    ConfigurationError,
    CookieStore,
    SessionError,
    SessionMiddleware,
    SessionTooLargeError,
    SqliteStore,
    Store,
)
from wsgisession.testing import ClientSideStoreContract, CountingStore

KEY, OLD_KEY = "cookie-store-new-key", "cookie-store-old-key"


class CountingCookieStore(CookieStore):
    """A CookieStore that counts how often the middleware asks it to open or seal a cookie."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.unsealed = 0
        self.sealed = 0

    def unseal(self, value: str, now: float) -> Any:
        self.unsealed += 1
        return super().unseal(value, now)

    def seal(self, *args: Any) -> str:
        self.sealed += 1
        return super().seal(*args)


class UnmeasuredCookieStore(CookieStore):
    """A CookieStore that cannot tell how much data fits: only the final check applies."""

    def max_data_size(self, max_chars: int) -> None:  # type: ignore[override]
        return None


def _client(
    keys: str | list[str] = KEY, store: CookieStore | None = None, **options: Any
) -> webtest.TestApp:
    middleware = SessionMiddleware(
        app, store=store if store is not None else CookieStore(), secret_keys=keys, **options
    )
    return webtest.TestApp(middleware)


def _raw(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _dump(client: webtest.TestApp, value: str | None = None) -> Any:
    headers = {"Cookie": f"wsgisession={value}"} if value is not None else {}
    return client.get("/dump", headers=headers).json


def test_session_round_trips_in_the_cookie() -> None:
    """A session set in one request is read back from the cookie alone in the next."""
    client = _client()
    client.get("/set?a=1&b=two")
    assert client.get("/get?a=&b=").json == {"a": "1", "b": "two"}


def test_cookie_reveals_no_plaintext() -> None:
    """T34: neither the cookie nor its base64 decoding shows any key or value of the session."""
    client = _client()
    value = session_cookie(client.get("/set?favourite_colour=ultramarine&user=alice"))
    assert value is not None
    raw = _raw(value)
    for secret in (b"favourite_colour", b"ultramarine", b"alice", b'"d":{'):
        assert secret not in raw
        assert secret.decode() not in value


def test_flipped_bit_gives_an_empty_session() -> None:
    """T35: one flipped bit anywhere in the sealed value gives an empty session, no exception."""
    client = _client()
    value = session_cookie(client.get("/set?a=1"))
    assert value is not None
    raw = _raw(value)
    fresh = webtest.TestApp(client.app)
    for position in range(len(raw)):
        flipped = bytearray(raw)
        flipped[position] ^= 1 << (position % 8)
        assert _dump(fresh, _encode(bytes(flipped))) == {"data": {}, "id": None, "new": True}
    assert _dump(fresh, value)["data"] == {"a": "1"}


def test_replay_after_embedded_expiry_is_empty(clock: Clock) -> None:
    """T36: a valid cookie replayed after the expiry sealed inside it gives an empty session."""
    client = _client(clock=clock, max_age=600)
    value = session_cookie(client.get("/set?a=1"))
    fresh = webtest.TestApp(client.app)
    clock.advance(599)
    assert _dump(fresh, value)["data"] == {"a": "1"}
    clock.advance(1)
    assert _dump(fresh, value) == {"data": {}, "id": None, "new": True}


def test_absolute_timeout_is_sealed_and_enforced(clock: Clock) -> None:
    """A cookie session kept busy past absolute_timeout ends: the deadline is sealed in it."""
    client = _client(clock=clock, max_age=600, touch_interval=0, absolute_timeout=1000)
    client.get("/set?a=1")
    for _ in range(3):
        clock.advance(300)
        response = client.get("/get?a=")
        assert response.json == {"a": "1"}
    assert cookie_attributes(response)["max-age"] == "100"  # sealed expiry capped likewise
    clock.advance(100)
    assert client.get("/get?a=").json == {"a": None}


def test_session_over_4_kb_fails_at_save() -> None:
    """T37: past a store's own budget, a cookie over 4096 bytes still raises at save, not cut."""
    client = _client(store=UnmeasuredCookieStore())
    with pytest.raises(SessionTooLargeError, match=r"over the limit of 4096 bytes") as caught:
        client.get("/set?big=" + "x" * 4000)
    assert caught.value.limit == 4096
    assert caught.value.size > 4096
    assert isinstance(caught.value, SessionError)


def test_a_session_too_big_for_its_cookie_is_refused_when_set() -> None:
    """Issue 13.5: with a CookieStore the size limit is what fits in the cookie, checked at set."""
    outcome: dict[str, Any] = {}

    def view(environ: Any, start_response: Any) -> Any:
        session = environ["wsgisession"]
        session["small"] = "kept"
        try:
            session["big"] = "x" * 3000  # more than a cookie holds, sealed and encoded
        except SessionTooLargeError as exc:
            outcome["error"] = exc
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = SessionMiddleware(view, store=CookieStore(), secret_keys=KEY)
    response = webtest.TestApp(middleware).get("/")
    error = outcome["error"]
    assert "'big'" in str(error) and error.limit == middleware.config.max_size
    assert 2500 < error.limit < 4096 - 29
    (header,) = set_cookies(response)  # the session as it was before the refused value
    assert len(header) <= 4096
    assert _dump(_client(), session_cookie(response))["data"] == {"small": "kept"}


def test_the_cookie_budget_never_raises_the_configured_limit() -> None:
    """A max_session_size below what fits in the cookie stays the limit; None means the budget."""
    small = SessionMiddleware(app, store=CookieStore(), secret_keys=KEY, max_session_size=500)
    assert small.config.max_size == 500
    unlimited = SessionMiddleware(app, store=CookieStore(), secret_keys=KEY, max_session_size=None)
    assert unlimited.config.max_size is not None and unlimited.config.max_size < 4096


def test_session_near_the_limit_is_kept_whole() -> None:
    """A session just under the limit is sent whole: the Set-Cookie value fits in 4096 bytes."""
    client = _client()
    response = client.get("/set?big=" + "x" * 2800)
    (header,) = set_cookies(response)
    assert 3700 < len(header) <= 4096
    assert client.get("/get?big=").json == {"big": "x" * 2800}


def test_growing_past_the_limit_keeps_the_old_cookie() -> None:
    """When a change would pass the limit, the error is raised and the previous cookie stays."""
    client = _client()
    client.get("/set?a=1")
    with pytest.raises(SessionTooLargeError):
        client.get("/set?big=" + "y" * 4000)
    assert client.get("/get?a=&big=").json == {"a": "1", "big": None}


def test_other_purpose_is_rejected() -> None:
    """T38: a cookie sealed for another purpose, with the same secret, is not accepted."""
    other = _client(store=CookieStore(purpose="billing"))
    value = session_cookie(other.get("/set?a=1"))
    mine = _client(store=CookieStore(purpose="session"))
    assert _dump(mine, value) == {"data": {}, "id": None, "new": True}


def test_other_app_key_is_rejected() -> None:
    """T38: a cookie sealed by an app with another secret key is not accepted."""
    other = _client(keys="another-application-key")
    value = session_cookie(other.get("/set?a=1"))
    assert _dump(_client(), value) == {"data": {}, "id": None, "new": True}


def test_signed_id_cookie_is_not_a_sealed_session() -> None:
    """T38: a server-side store's id.signature cookie, under the same key, opens nothing here."""
    server = webtest.TestApp(SessionMiddleware(app, secret_keys=KEY))
    value = session_cookie(server.get("/set?a=1"))
    assert _dump(_client(), value) == {"data": {}, "id": None, "new": True}


def test_sealed_cookie_costs_a_server_store_nothing(tmp_path: Any) -> None:
    """T38: a sealed session sent to a server-side store with the same key makes no store call."""
    value = session_cookie(_client().get("/set?a=1"))
    counting = CountingStore(SqliteStore(tmp_path / "s.db"))
    server = webtest.TestApp(SessionMiddleware(app, store=counting, secret_keys=KEY))
    assert _dump(server, value) == {"data": {}, "id": None, "new": True}
    assert counting.calls == []


def test_key_rotation_newest_seals_all_open() -> None:
    """Rotation: an old-key cookie opens under [new, old], is resealed new, dies without old."""
    old_value = session_cookie(_client(keys=OLD_KEY).get("/set?a=1"))
    rotating = _client(keys=[KEY, OLD_KEY])
    assert _dump(rotating, old_value)["data"] == {"a": "1"}
    new_value = session_cookie(
        rotating.get("/set?b=2", headers={"Cookie": f"wsgisession={old_value}"})
    )
    only_new = _client(keys=KEY)
    assert _dump(only_new, new_value)["data"] == {"a": "1", "b": "2"}
    assert _dump(only_new, old_value) == {"data": {}, "id": None, "new": True}


def test_read_only_request_sends_no_cookie() -> None:
    """An unchanged session is not re-issued: reads send no Set-Cookie and seal nothing."""
    store = CountingCookieStore()
    client = _client(store=store)
    client.get("/set?a=1")
    store.sealed = 0
    response = client.get("/get?a=")
    assert set_cookies(response) == []
    assert store.sealed == 0
    assert response.headers["Vary"] == "Cookie"


def test_expiry_refresh_is_throttled(clock: Clock) -> None:
    """Reads re-issue the cookie (with a later sealed expiry) at most once per touch_interval."""
    store = CountingCookieStore()
    client = _client(store=store, clock=clock, max_age=1000, touch_interval=100)
    first = session_cookie(client.get("/set?a=1"))
    clock.advance(50)
    assert set_cookies(client.get("/get?a=")) == []
    clock.advance(60)
    refreshed = session_cookie(client.get("/get?a="))
    assert refreshed is not None and refreshed != first
    assert set_cookies(client.get("/get?a=")) == []
    clock.advance(1000 - 110 + 1)  # past the first cookie's expiry, within the refreshed one
    fresh = webtest.TestApp(client.app)
    assert _dump(fresh, first)["data"] == {}
    assert _dump(fresh, refreshed)["data"] == {"a": "1"}


def test_change_reissues_cookie_keeping_its_expiry(clock: Clock) -> None:
    """A change inside the refresh window re-seals the data but does not extend the expiry."""
    client = _client(clock=clock, max_age=1000)
    client.get("/set?a=1")
    clock.advance(10)
    response = client.get("/set?b=2")
    assert cookie_attributes(response)["max-age"] == "990"
    clock.advance(990)
    assert _dump(webtest.TestApp(client.app), session_cookie(response))["data"] == {}


def test_regenerate_gives_new_id_same_data_new_csrf_token() -> None:
    """regenerate() on a cookie session: a new id and cookie, the data kept, the token rotated."""
    seen: dict[str, Any] = {}

    def view(environ: dict[str, Any], start_response: Any) -> Any:
        session = environ["wsgisession"]
        if environ["PATH_INFO"] == "/token":
            seen["token"] = session.csrf_token
            seen["id"] = session.id
        else:
            session.regenerate()
            seen["new_id"] = session.id
            seen["ok"] = session.check_csrf_token(seen["token"])
            seen["new_token"] = session.csrf_token
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    client = webtest.TestApp(SessionMiddleware(view, store=CookieStore(), secret_keys=KEY))
    before = session_cookie(client.get("/token"))
    after = session_cookie(client.get("/login"))
    assert after is not None and after != before
    assert seen["new_id"] != seen["id"]
    assert seen["ok"] is False
    assert seen["new_token"] != seen["token"]


def test_login_keeps_data_under_a_new_id() -> None:
    """/login (regenerate, then user) on a cookie session keeps the data and changes the id."""
    client = _client()
    client.get("/set?cart=apples")
    old_id = client.get("/dump").json["id"]
    assert client.get("/login?user=bob").json == {"cart": "apples", "user": "bob"}
    dumped = client.get("/dump").json
    assert dumped["id"] != old_id
    assert dumped["data"] == {"cart": "apples", "user": "bob"}


def test_destroy_expires_the_cookie() -> None:
    """destroy() on a cookie session expires the cookie with the same Path; the next is empty."""
    client = _client(cookie_path="/")
    client.get("/set?a=1")
    response = client.get("/logout")
    attributes = cookie_attributes(response)
    assert attributes["max-age"] == "0"
    assert attributes["path"] == "/"
    assert _dump(client) == {"data": {}, "id": None, "new": True}


def test_flash_messages_show_once() -> None:
    """Flash messages travel in the cookie and are shown exactly once."""
    client = _client()
    client.get("/flash?m=saved")
    client.get("/flash?m=again")
    assert client.get("/flashes").json == ["saved", "again"]
    assert client.get("/flashes").json == []


def test_nested_change_is_sealed() -> None:
    """An in-place change of a nested list is noticed and sealed into the cookie."""
    client = _client()
    client.get("/cart?item=a")
    assert client.get("/cart?item=b").json == ["a", "b"]
    assert client.get("/get?cart=").json == {"cart": ["a", "b"]}


def test_malformed_cookies_are_dropped_unopened() -> None:
    """Values that are not url-safe text of a possible length never reach unseal()."""
    store = CountingCookieStore()
    client = _client(store=store)
    for value in ['"quo ted"', "x" * 5000, "\x00", "ünï", "ab.cd", "%00", "a/b", "a+b="]:
        assert _dump(client, value)["data"] == {}
    assert store.unsealed == 0


def test_forged_and_valid_cookie_in_either_order() -> None:
    """A forged cookie next to a valid one never wins, in either order; two valid ones mix never."""
    client = _client()
    valid = session_cookie(client.get("/set?a=1"))
    other = session_cookie(webtest.TestApp(client.app).get("/set?a=2"))
    forged = "A" * 80
    fresh = webtest.TestApp(client.app)
    for header in (
        f"wsgisession={forged}; wsgisession={valid}",
        f"wsgisession={valid}; wsgisession={forged}",
    ):
        assert fresh.get("/get?a=", headers={"Cookie": header}).json == {"a": "1"}
    both = f"wsgisession={valid}; wsgisession={other}"
    assert fresh.get("/get?a=", headers={"Cookie": both}).json == {"a": None}


def test_cookie_attributes_follow_the_options() -> None:
    """The sealed cookie carries the same attributes as any session cookie (HttpOnly, Secure…)."""
    client = _client(cookie_name="__Host-session", cookie_secure=True)
    response = client.get("/set?a=1", extra_environ={"wsgi.url_scheme": "https"})
    attributes = cookie_attributes(response, "__Host-session")
    assert {"httponly", "secure"} <= set(attributes)
    assert attributes["samesite"] == "Lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    assert set_cookies(client.get("/set?a=1")) == []  # Secure cookie, plain HTTP: not sent


def test_without_secret_keys_is_a_configuration_error() -> None:
    """CookieStore without secret_keys is refused when the middleware is built."""
    with pytest.raises(ConfigurationError, match="secret_keys") as caught:
        SessionMiddleware(app, store=CookieStore())
    assert isinstance(caught.value, ValueError)


def test_one_store_cannot_serve_two_key_sets() -> None:
    """One CookieStore given to two middlewares with different keys is refused, not reused."""
    store = CookieStore()
    SessionMiddleware(app, store=store, secret_keys=KEY)
    SessionMiddleware(app, store=store, secret_keys=KEY)  # the same keys are fine
    with pytest.raises(ConfigurationError, match="its own CookieStore"):
        SessionMiddleware(app, store=store, secret_keys="other")


def test_empty_purpose_is_refused() -> None:
    """An empty purpose is a configuration error that says what to give."""
    with pytest.raises(ConfigurationError, match="purpose"):
        CookieStore(purpose="")


def test_a_cookie_store_is_not_a_server_side_store() -> None:
    """A cookie store is a ClientSideStore with no server-side operations to pretend to have."""
    store = CookieStore()
    assert isinstance(store, ClientSideStore)
    assert not isinstance(store, Store)
    assert not hasattr(store, "load") and not hasattr(store, "save")


def test_authentic_but_odd_payload_is_ignored() -> None:
    """A payload sealed with the right key but of the wrong form opens to nothing."""
    store = CookieStore()
    SessionMiddleware(app, store=store, secret_keys=KEY)
    good = store.seal("A" * 43, {"a": 1}, {}, 2e9)
    assert store.unseal(good, 1e9) is not None
    bad_id = store.seal("not-an-id", {"a": 1}, {}, 2e9)
    assert store.unseal(bad_id, 1e9) is None


def test_missing_cryptography_names_the_extra() -> None:
    """Without cryptography, CookieStore() raises MissingDriverError naming the extra."""
    code = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import wsgisession\n"
        "try:\n    wsgisession.CookieStore()\n"
        "except wsgisession.MissingDriverError as exc:\n    print(exc)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert "pip install 'sessions-wsgi[cookie]'" in output


def test_payload_is_json_not_pickle() -> None:
    """What the key opens is JSON: the serializer never runs code on a cookie's content."""
    store = CookieStore()
    SessionMiddleware(app, store=store, secret_keys=KEY)
    value = store.seal("B" * 43, {"k": [1, "two"]}, {"created": 1.0}, 2e9)
    opened = store.unseal(value, 1e9)
    assert opened is not None
    session_id, record = opened
    assert session_id == "B" * 43
    assert record.data == {"k": [1, "two"]}
    assert json.loads(json.dumps(record.meta)) == {"created": 1.0}


class TestCookieStoreContract(ClientSideStoreContract):
    """CookieStore passes the client-side store contract."""

    @pytest.fixture
    def new_store(self) -> Callable[[], ClientSideStore]:
        return CookieStore


# Issue 13.5: the cookie's budget holds on every path, exactly ---------------------------------


def _cookie_run(
    view: Any, cookie: str | None = None, **options: Any
) -> tuple[dict[str, Any], webtest.TestResponse, SessionMiddleware]:
    """Run *view(session, box)* in one request over a CookieStore; return the box and response."""
    box: dict[str, Any] = {}

    def wsgi(environ: Any, start_response: Any) -> Any:
        view(environ["wsgisession"], box)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    middleware = SessionMiddleware(wsgi, store=CookieStore(), secret_keys=KEY, **options)
    client = webtest.TestApp(middleware)
    if cookie is not None:
        client.set_cookie("wsgisession", cookie)
    return box, client.get("/"), middleware


def _budget() -> int:
    return SessionMiddleware(app, store=CookieStore(), secret_keys=KEY).config.max_size or 0


def _text_of(size: int, char: str = "é") -> str:
    """A str value that makes {"k": value} exactly *size* bytes of JSON, mostly *char*."""
    room = size - len('{"k":""}')
    wide = len(char.encode("utf-8"))
    return char * (room // wide) + "x" * (room % wide)


@pytest.mark.parametrize("char", ["x", "é", "😀"])
def test_a_session_of_exactly_the_budget_fits_and_one_byte_more_is_refused(char: str) -> None:
    """Issue 13.5: the budget is exact in UTF-8 bytes: a session of exactly that many bytes is
    sealed into a Set-Cookie of at most 4096 bytes; one byte more is refused when set."""
    budget = _budget()

    def view(session: Any, box: dict[str, Any]) -> None:
        session["k"] = _text_of(budget, char)
        try:
            session["k"] = _text_of(budget + 1, char)
        except SessionTooLargeError as exc:
            box["error"] = exc

    box, response, _ = _cookie_run(view)
    assert "'k'" in str(box["error"]) and box["error"].limit == budget
    (header,) = set_cookies(response)
    assert len(header) <= 4096
    assert _dump(_client(), session_cookie(response))["data"] == {"k": _text_of(budget, char)}


def test_non_ascii_past_the_budget_is_refused_when_set_not_at_start_response() -> None:
    """Issue 13.5: text under the budget in characters but over it in bytes fails at set time,
    where the view can catch it, not with an error from start_response."""

    def view(session: Any, box: dict[str, Any]) -> None:
        session["small"] = "kept"
        try:
            session["big"] = "€" * (_budget() // 2)  # 1.5 times the budget in bytes
        except SessionTooLargeError as exc:
            box["error"] = exc

    box, response, _ = _cookie_run(view)
    assert "'big'" in str(box["error"])
    assert _dump(_client(), session_cookie(response))["data"] == {"small": "kept"}


def test_increment_and_flash_honour_the_cookie_budget() -> None:
    """Issue 13.5: increment() of new keys and flash() are refused at the call past the budget."""

    def view(session: Any, box: dict[str, Any]) -> None:
        try:
            for count in range(1000):
                session.increment(f"c{count:04}")
        except SessionTooLargeError as exc:
            box["increment"] = exc
        session.clear()
        try:
            for _ in range(1000):
                session.flash("a message of some length " * 4)
        except SessionTooLargeError as exc:
            box["flash"] = exc

    box, response, _ = _cookie_run(view)
    assert "'c0" in str(box["increment"]) and "'_flash:'" in str(box["flash"])
    (header,) = set_cookies(response)
    assert len(header) <= 4096
    assert len(_dump(_client(), session_cookie(response))["data"]["_flash:"]) > 10


def test_nested_change_past_the_budget_is_named_and_the_cookie_kept() -> None:
    """Issue 13.5: an in-place change past the budget raises SessionTooLargeError naming the key
    (at the end of the request, or at session.changed()), and the old cookie stays."""
    _, first, _ = _cookie_run(lambda session, box: session.set("cart", ["a"]))
    cookie = session_cookie(first)
    with pytest.raises(SessionTooLargeError, match=r"session\['cart'\] changed in place"):
        _cookie_run(lambda session, box: session["cart"].extend(["é" * 100] * 20), cookie)

    def checked(session: Any, box: dict[str, Any]) -> None:
        session["cart"].extend(["é" * 100] * 20)
        try:
            session.changed("cart")
        except SessionTooLargeError as exc:
            box["error"] = exc
            del session["cart"][1:]

    box, response, _ = _cookie_run(checked, cookie)
    assert "'cart'" in str(box["error"])
    assert "Set-Cookie" not in response.headers  # undone: the cart is as it was, nothing to send
