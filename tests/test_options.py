"""Options refused when the middleware is built, each with a message that says what to do."""

from __future__ import annotations

import pytest

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
