"""wsgisession as Pyramid's own session: ``request.session`` is an ``ISession``.

::

    config.set_session_factory(session_factory(SqliteStore("sessions.db")))
    # or, from the .ini settings (wsgisession.store = redis://..., wsgisession.max_age = ...):
    config.include("wsgisession.integrations.pyramid")

The session provides all of ``pyramid.interfaces.ISession``, so ``SessionAuthenticationHelper``,
``SessionCSRFStoragePolicy`` and flash messages work on it. The cookie is set by a response
callback from what the shared core decides; nothing is loaded until the session is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyramid.authentication import SessionAuthenticationHelper as _PyramidHelper
from pyramid.httpexceptions import HTTPServiceUnavailable
from pyramid.interfaces import ISession
from pyramid.path import DottedNameResolver
from zope.interface import implementer

from ..core import Exchange, SessionCore
from ..errors import ConfigurationError, StoreError
from ..session import _CSRF_KEY, Session
from ..stores import ClientSideStore, Store
from ._options import OPTION_NAMES, build_core, check_names, resolve_store

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request
    from pyramid.response import Response

__all__ = [
    "PyramidSession",
    "SessionAuthenticationHelper",
    "SessionFactory",
    "StoreUnavailable",
    "includeme",
    "session_factory",
]

#: The prefix of wsgisession's keys in the .ini settings.
PREFIX = "wsgisession."


class StoreUnavailable(HTTPServiceUnavailable, StoreError):  # type: ignore[misc]
    """The session store failed under ``on_store_error="error"``: Pyramid answers with a 503.

    It is a Pyramid HTTP exception (an exception view may render it) and a
    :class:`wsgisession.StoreError`.
    """

    def __init__(self, core: SessionCore) -> None:
        _status, headers, body = core.unavailable()
        super().__init__(  # type: ignore[call-arg]
            headers=[h for h in headers if h[0].lower() != "content-length"], body=body
        )


@implementer(ISession)
class PyramidSession(Session):
    """``request.session``: a wsgisession session that provides Pyramid's ``ISession``.

    Changes inside nested values are saved without ``changed()`` (which checks them at once);
    ``invalidate()`` ends the session (record deleted, cookie expired) and data set afterwards
    starts a new one.
    """

    __slots__ = ("_core",)
    _core: SessionCore

    def _load(self) -> None:
        try:
            super()._load()
        except StoreError as exc:
            raise StoreUnavailable(self._core) from exc

    @property
    def created(self) -> int:
        """When the session was created, in whole seconds since the epoch (now, for a new one)."""
        created = self.created_at
        return int(self._ctx.clock() if created is None else created.timestamp())

    def changed(self, key: str | None = None) -> None:
        """Check values changed in place now (they are saved without it, found at the save)."""
        check = getattr(super(), "changed", None)
        if check is not None:
            check(key)  # the session checks values changed in place now

    @property
    def new(self) -> bool:
        """True when this request started the session."""
        return self.is_new

    def invalidate(self) -> None:
        """End the session: its record is deleted and its cookie expired."""
        self.destroy()

    def new_csrf_token(self) -> str:
        """Replace the session's CSRF token and return the new one."""
        self.pop(_CSRF_KEY, None)
        return self.csrf_token

    def get_csrf_token(self) -> str:
        """Return the session's CSRF token, making one when there is none."""
        return self.csrf_token


class SessionAuthenticationHelper(_PyramidHelper):  # type: ignore[misc]
    """Pyramid's ``SessionAuthenticationHelper``, with a new session id at login and logout.

    ``remember()`` moves the session to a new id before it stores the user id (a planted
    cookie is never authenticated) and binds the session to ``str(userid)``, so
    ``session.user_sessions()`` lists it and ``wsgisession.revoke_user()`` ends it;
    ``forget()`` removes the user id, moves what is left of the session to a new id and
    unbinds it, so the logged-in cookie opens nothing afterwards. A drop-in for Pyramid's own
    helper in a security policy.
    """

    def remember(self, request: Request, userid: Any, **kw: Any) -> list[tuple[str, str]]:
        """Store *userid* in the session, under a new session id."""
        session = request.session
        if isinstance(session, PyramidSession):
            session.regenerate()
            session.set_user(str(userid))  # listed by user_sessions(), ended by revoke_user()
        return super().remember(request, userid, **kw)  # type: ignore[no-any-return]

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        """Remove the user id; the rest of the session moves to a new id."""
        headers: list[tuple[str, str]] = super().forget(request, **kw)
        session = request.session
        if isinstance(session, PyramidSession):
            session.regenerate()
            session.set_user(None)
        return headers


class SessionFactory:
    """Pyramid's session factory over one core; :func:`session_factory` makes one."""

    def __init__(self, core: SessionCore) -> None:
        #: The core every request's session comes from.
        self.core = core
        #: Where the sessions live.
        self.store: Store | ClientSideStore = core.store

    def __call__(self, request: Request) -> PyramidSession:
        """Start the request's exchange, and finish it in a response callback."""
        core = self.core
        exchange = core.begin(
            request.environ.get("HTTP_COOKIE"), request.scheme == "https", request.path
        )
        if core.describe is not None:
            # For the describe hook, when remember() binds; dropped at the end (the environ
            # holds the session, which holds the exchange: no cycle is left behind).
            exchange.client = request.environ
        session: PyramidSession = exchange.session  # type: ignore[assignment]
        session._core = core

        def finish(request: Request, response: Response) -> None:
            exchange.client = None
            try:
                _finish(core, exchange, response)
            finally:
                exchange.close()  # no session <-> exchange cycle left for the collector

        request.add_response_callback(finish)
        return session


def _finish(core: SessionCore, exchange: Exchange, response: Response) -> None:
    """Let the core write what changed; apply its headers, or make the response its 503."""
    outcome = exchange.finish(response.status_int, list(response.headerlist))
    if outcome.unavailable:
        status, headers, body = core.unavailable()
        if response.status_int == status:  # already a 503 (an exception view's page): keep it
            for name, value in headers:
                if name.lower() in ("retry-after", "cache-control"):
                    response.headers[name] = value
            return
        response.status = status
        response.headerlist = headers
        response.body = body
    else:
        response.headerlist = outcome.headers


def _core(
    store: Store | ClientSideStore | str | None,
    options: Mapping[str, Any],
    sources: Mapping[str, str],
) -> SessionCore:
    return build_core(
        resolve_store(store, None, sources.get("store", "store")), PyramidSession, options, sources
    )


def session_factory(
    store: Store | ClientSideStore | str | None = None, **options: Any
) -> SessionFactory:
    """A session factory for ``config.set_session_factory``, over *store* (or its URL).

    *options* are wsgisession's (``secret_keys``, ``cookie_name``, ``max_age``,
    ``on_store_error``, ...), checked now. The store is a per-process MemoryStore by default.
    """
    check_names(options, "session_factory()")
    return SessionFactory(_core(store, options, {}))


# .ini settings ----------------------------------------------------------------------------------

_INTS = {"max_age", "touch_interval", "absolute_timeout", "max_session_size", "retry_after"}
_OPTIONAL = {"touch_interval", "absolute_timeout", "max_session_size", "cookie_domain"}
_BOOLS = {"cookie_httponly", "cookie_partitioned"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NOT_SETTINGS = {"clock"}  # only from code


def _convert(option: str, value: Any, key: str) -> Any:
    """One .ini value as the option's type; a clear error naming *key* otherwise."""
    if not isinstance(value, str):
        return value  # set from Python code: the core checks it
    text = value.strip()
    if option in _OPTIONAL and text.lower() in ("", "none"):
        return None
    if option in _INTS:
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(
                f"{key} = {value!r} is not a whole number of seconds or bytes; "
                f"write e.g. {key} = 3600"
            ) from None
    if option in _BOOLS:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigurationError(f"{key} = {value!r} is not true or false; write {key} = true")
    if option == "cookie_secure":
        lowered = text.lower()
        if lowered in ("", "auto", "none"):
            return None
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ConfigurationError(
            f"{key} = {value!r}: write true (always Secure), false (never) or auto (Secure "
            "exactly on HTTPS requests, the default)"
        )
    if option == "secret_keys":
        return text.split()  # one key per line (or space), newest first
    if option == "describe":
        if text.lower() in ("", "none"):
            return None
        try:
            return DottedNameResolver().resolve(text)
        except (ImportError, ValueError) as exc:
            raise ConfigurationError(
                f"{key} = {value!r} names no importable callable ({exc}); write the dotted "
                f"name of a function of the environ, e.g. {key} = myapp.sessions:describe"
            ) from exc
    if option == "cookie_samesite" and not text:
        return None
    return text


def settings_options(settings: Mapping[str, Any]) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """Read ``wsgisession.store`` and ``wsgisession.<option>`` from Pyramid *settings*.

    Returns the store URL (or None), the options, and each option's setting name.
    """
    options: dict[str, Any] = {}
    sources: dict[str, str] = {}
    store = None
    for key, value in settings.items():
        if not key.startswith(PREFIX):
            continue
        option = key[len(PREFIX) :]
        if option == "store":
            store = value
            sources["store"] = key
            continue
        if option not in OPTION_NAMES or option in _NOT_SETTINGS:
            known = sorted(OPTION_NAMES - _NOT_SETTINGS)
            raise ConfigurationError(
                f"{key} is not a wsgisession setting; use {PREFIX}store or one of "
                + ", ".join(PREFIX + name for name in known)
            )
        options[option] = _convert(option, value, key)
        sources[option] = key
    return store, options, sources


def includeme(config: Configurator) -> None:
    """``config.include("wsgisession.integrations.pyramid")``: the session from the settings.

    ``wsgisession.store`` is a store URL (a per-process memory store when unset); any
    ``wsgisession.<option>`` sets that option (ints and booleans converted, ``secret_keys``
    one per line, newest first, ``describe`` a dotted name such as
    ``myapp.sessions:describe``). A bad setting fails here, naming the setting.
    """
    store, options, sources = settings_options(config.get_settings())
    config.set_session_factory(SessionFactory(_core(store, options, sources)))
