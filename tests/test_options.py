"""Options refused when the middleware is built, each with a message that says what to do."""

from __future__ import annotations

import pytest
import webtest

from tests.support.app import app
from wsgisession import (
    ConfigurationError,
    ConfigurationTypeError,
    CookieStore,
    SessionError,
    SessionMiddleware,
)

#: What every message about a key ends with: how to make one.
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


@pytest.mark.parametrize("keys", [123, 1.5, {"new": "old"}, object()])
def test_secret_keys_of_the_wrong_type_say_what_is_accepted(keys: object) -> None:
    """secret_keys=123 is a ConfigurationError (and a TypeError) naming a str or a list of str."""
    with pytest.raises(ConfigurationTypeError) as info:
        SessionMiddleware(app, secret_keys=keys)  # type: ignore[arg-type]
    error = info.value
    assert isinstance(error, ConfigurationError) and isinstance(error, SessionError)
    assert isinstance(error, TypeError) and isinstance(error, ValueError)
    message = str(error)
    assert f"secret_keys is {'an' if type(keys).__name__[0] in 'aeiou' else 'a'} " in message
    assert "give a str, or a list of str newest first" in message
    assert "secret_keys=['new key', 'old key']" in message and MAKE_A_KEY in message


def test_secret_keys_as_a_set_are_refused_for_having_no_order() -> None:
    """A set of keys has no newest: the message says the first key signs and asks for a list."""
    with pytest.raises(ConfigurationTypeError, match="which has no order, and the first key signs"):
        SessionMiddleware(app, secret_keys={"new", "old"})  # type: ignore[arg-type]


def test_a_key_of_the_wrong_type_names_its_position_and_not_its_value() -> None:
    """secret_keys=['k', 5]: the position and the type, how to make a key, never a key itself."""
    with pytest.raises(ConfigurationTypeError) as info:
        SessionMiddleware(app, secret_keys=["a-real-secret", 5])  # type: ignore[list-item]
    assert "secret_keys[1] is an int; give each key as a str" in str(info.value)
    assert MAKE_A_KEY in str(info.value)
    assert "a-real-secret" not in str(info.value)


@pytest.mark.parametrize("keys", [[], ()])
def test_no_keys_in_a_list_is_refused_rather_than_signing_nothing(keys: list[str]) -> None:
    """An empty list (keys read from a config that came out empty) never silently signs nothing."""
    with pytest.raises(
        ConfigurationError, match="with no key; give at least one, or leave"
    ) as info:
        SessionMiddleware(app, secret_keys=keys)
    assert not isinstance(info.value, TypeError)
    with pytest.raises(ConfigurationError, match="with no key"):
        SessionMiddleware(app, store=CookieStore(), secret_keys=keys)


def test_no_repr_shows_a_secret_key() -> None:
    """Issue 13.6: nothing an error tracker may repr() (core, middleware, session, stores,
    framework integrations, and what they hold) shows a secret key."""
    import dataclasses

    from wsgisession import CookieStore, SessionMiddleware
    from wsgisession.core import SessionCore

    secret = "a-very-secret-signing-key-0123456789"
    old = "an-older-secret-signing-key-987654"
    keys = [secret, old]
    objects: list[object] = []
    for store in (None, CookieStore()):
        core = SessionCore(store, secret_keys=keys)
        middleware = SessionMiddleware(
            app, store=CookieStore() if store else None, secret_keys=keys
        )
        exchange = core.begin(None, True)
        exchange.session["a"] = 1
        objects += [core, middleware, middleware.core, exchange, exchange.session, core.store]
        objects += [core.persistence, core.cookie, core._context, core.config]
    flask = pytest.importorskip("flask")
    from wsgisession.integrations.flask import SessionInterface
    from wsgisession.integrations.pyramid import session_factory

    flask_app = flask.Flask("repr")
    interface = SessionInterface(secret_keys=keys)
    objects += [interface, interface.bind(flask_app), session_factory(secret_keys=keys)]
    for thing in objects:
        texts = [repr(thing), str(thing)]
        if dataclasses.is_dataclass(thing):
            texts += [repr(getattr(thing, f.name)) for f in dataclasses.fields(thing) if f.repr]
        for text in texts:
            assert secret not in text and old not in text, type(thing)


# Every option of the wrong type ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "accepts"),
    [
        ("cookie_name", 5, "give a str, e.g. cookie_name='wsgisession'"),
        ("cookie_path", b"/", "give a str starting with '/'"),
        ("cookie_domain", ["example.com"], "a host name as a str"),
        ("cookie_secure", "yes", "True (always Secure), False (never) or None"),
        ("cookie_httponly", 1, "True (the default) or False"),
        ("cookie_samesite", 1, "'Strict', 'Lax' (the default) or 'None', or None"),
        ("cookie_partitioned", "true", "True or False"),
        ("max_age", "3600", "a whole number of seconds (an int), e.g. max_age=3600"),
        ("max_age", 3600.0, "a whole number of seconds (an int)"),
        ("max_age", True, "a whole number of seconds (an int)"),
        ("touch_interval", "60", "a whole number of seconds (an int), or None"),
        ("absolute_timeout", 1.5, "a whole number of seconds (an int), or None"),
        ("max_session_size", "64k", "a whole number of bytes (an int), or None for no limit"),
        ("on_store_error", 503, "'error' or 'continue'"),
        ("retry_after", "5", "a whole number of seconds (an int)"),
        ("clock", 1_800_000_000.0, "a callable returning seconds since the epoch"),
        ("environ_key", None, "a str, e.g. environ_key='wsgisession'"),
        ("trust_forwarded_proto", "yes", "True (only behind a proxy"),
        ("store", "sqlite:///sessions.db", "store_from_url(url) for a URL"),
    ],
)
def test_every_option_of_the_wrong_type_names_it_and_what_it_takes(
    option: str, value: object, accepts: str
) -> None:
    """A wrong type: ConfigurationTypeError with the option, the value and type got, what works."""
    with pytest.raises(ConfigurationTypeError) as info:
        SessionMiddleware(app, **{option: value})  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{option}={value!r} is {_a(value)}"), message
    assert accepts in message
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def _a(value: object) -> str:
    name = type(value).__name__
    return "None" if value is None else f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


# Values that cannot work -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"max_age": 600, "touch_interval": 601},
            "touch_interval=601 is longer than max_age=600: a session used only by reads would "
            "expire before its refresh is ever written; set touch_interval to at most max_age "
            "(e.g. 60, the default max_age // 10), or leave it out",
        ),
        (
            {"cookie_name": "my session"},
            "cookie_name='my session' is not a valid cookie name: it holds ' '",
        ),
        ({"cookie_name": "sid;x"}, "it holds ';'"),
        ({"cookie_name": "a=b"}, "it holds '='"),
        ({"cookie_name": "sé"}, "it holds 'é'"),
        ({"cookie_name": ""}, "it is empty"),
        (
            {"cookie_path": "app"},
            "cookie_path='app' must start with '/' (browsers ignore any "
            "other Path), e.g. cookie_path='/app'",
        ),
        ({"cookie_path": "/a;Domain=evil.example"}, "holds ';', which a Set-Cookie Path"),
        ({"cookie_path": "/a\nb"}, "holds '\\n'"),
        ({"cookie_path": "/café"}, "percent-encode it"),
        (
            {"cookie_domain": "https://example.com"},
            "has a scheme; give the host name alone, e.g. cookie_domain='example.com'",
        ),
        ({"cookie_domain": "example.com:8080"}, "has a port, which cookies do not have"),
        ({"cookie_domain": "example.com/app"}, "has a path; give the host name alone"),
        ({"cookie_domain": ""}, "cookie_domain='' is empty; leave it out (None)"),
        ({"cookie_domain": "exa mple.com"}, "is not a host name browsers accept"),
        ({"environ_key": ""}, "environ_key='' is empty; use a lowercase name of your own"),
        ({"environ_key": "wsgi.session"}, "is a name the WSGI server owns (PEP 3333)"),
        ({"environ_key": "HTTP_COOKIE"}, "is a name the WSGI server owns (PEP 3333)"),
        (
            {"cookie_partitioned": True},
            "cookie_partitioned=True needs cookie_secure=True, not cookie_secure=None: browsers "
            "drop a Partitioned cookie that is not Secure",
        ),
        ({"cookie_partitioned": True, "cookie_secure": False}, "not cookie_secure=False"),
    ],
)
def test_values_browsers_or_servers_would_not_keep_are_refused(
    options: dict[str, object], message: str
) -> None:
    """Each refused at construction, saying what was wrong and what to write instead."""
    with pytest.raises(ConfigurationError) as info:
        SessionMiddleware(app, **options)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert not isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "options",
    [
        {"max_age": 600, "touch_interval": 600},  # Flask's SESSION_REFRESH_EACH_REQUEST=False
        {"max_age": 600, "touch_interval": 0},
        {"cookie_domain": ".example.com"},
        {"cookie_domain": "app.example.com"},
        {"cookie_domain": "127.0.0.1"},
        {"cookie_path": "/app/%C3%A9"},
        {"cookie_name": "__Host-sid", "cookie_secure": True},
        {"environ_key": "myapp.session"},
        {"cookie_partitioned": True, "cookie_secure": True, "cookie_samesite": "None"},
    ],
)
def test_values_that_work_are_accepted(options: dict[str, object]) -> None:
    """The checks refuse nothing a browser keeps (every one of these builds)."""
    middleware = SessionMiddleware(app, **options)  # type: ignore[arg-type]
    assert middleware.core.cookie.name


def test_a_partitioned_cookie_carries_the_attribute_and_keeps_the_others() -> None:
    """cookie_partitioned=True: Partitioned is added after WebOb's attributes, on set and expire."""
    middleware = SessionMiddleware(
        app, cookie_partitioned=True, cookie_secure=True, cookie_samesite="None"
    )
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    (header,) = client.get("/set?a=1").headers.getall("Set-Cookie")
    attributes = [part.strip().lower() for part in header.split(";")]
    assert attributes[-1] == "partitioned"
    assert {"secure", "httponly", "samesite=none", "path=/"} <= set(attributes)
    assert client.get("/get?a=").json == {"a": "1"}
    (expired,) = client.get("/logout").headers.getall("Set-Cookie")
    assert "max-age=0" in expired.lower() and expired.endswith("; Partitioned")
    plain = SessionMiddleware(app, cookie_secure=True)
    https = webtest.TestApp(plain, extra_environ={"wsgi.url_scheme": "https"})
    (header,) = https.get("/set?a=1").headers.getall("Set-Cookie")
    assert "partitioned" not in header.lower()


def test_a_partitioned_cookie_store_cookie_fits_its_budget() -> None:
    """CookieStore with cookie_partitioned: the size budget counts the attribute, so a session
    that fits the budget is sent whole."""
    store = CookieStore()
    middleware = SessionMiddleware(
        app, store=store, secret_keys="k" * 32, cookie_partitioned=True, cookie_secure=True
    )
    client = webtest.TestApp(middleware, extra_environ={"wsgi.url_scheme": "https"})
    budget = middleware.core.config.max_size
    assert budget is not None
    response = client.get("/set", params={"big": "x" * (budget - 40)})
    (header,) = response.headers.getall("Set-Cookie")
    assert len(header) <= 4096 and header.endswith("; Partitioned")
