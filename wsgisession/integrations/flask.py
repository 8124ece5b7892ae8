"""wsgisession as Flask's own session: ``flask.session``, ``flash()``, Flask-Login, the test client.

::

    from wsgisession.integrations.flask import init_app

    app.config["WSGISESSION_STORE"] = "redis://localhost:6379/0"
    init_app(app)                     # or: app.session_interface = SessionInterface(store)

``flask.session`` is then a :class:`wsgisession.Session` with Flask's ``SessionMixin``
attributes. Flask's settings are honoured where wsgisession has the equivalent
(``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS`` sign the cookie, ``SESSION_COOKIE_*`` shape it,
``PERMANENT_SESSION_LIFETIME`` is the idle timeout); ``WSGISESSION_*`` keys override them.
Everything else (cookies, signing, the write plan, the outage policy) is the shared core's.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import flask
from flask.sessions import SessionInterface as _FlaskSessionInterface
from flask.sessions import SessionMixin
from werkzeug.datastructures import Headers
from werkzeug.exceptions import ServiceUnavailable

from ..core import Exchange, SessionCore
from ..errors import ConfigurationError, StoreError
from ..serializers import Serializer, TaggedJSONSerializer
from ..session import Session
from ..stores import ClientSideStore, Store
from ._options import OPTION_NAMES, build_core, check_names, resolve_store

if TYPE_CHECKING:
    from flask.wrappers import Request, Response

__all__ = ["FlaskSession", "SessionInterface", "StoreUnavailable", "init_app"]

#: The app.config key of the store URL that init_app reads.
STORE_KEY = "WSGISESSION_STORE"
_PREFIX = "WSGISESSION_"
_PERMANENT = "_permanent"  # where Flask's SessionMixin keeps ``permanent``


def _tagged() -> Serializer:
    """The serializer of stores the integration builds: tagged JSON, as Flask's own session."""
    return TaggedJSONSerializer()


class StoreUnavailable(ServiceUnavailable, StoreError):
    """The session store failed under ``on_store_error="error"``: Flask answers with a 503.

    It is a werkzeug ``HTTPException``, so ``@app.errorhandler(503)`` may render the page;
    ``Retry-After`` is added either way. It is also a :class:`wsgisession.StoreError`.
    """

    def __init__(self, core: SessionCore) -> None:
        status, headers, body = core.unavailable()
        super().__init__(response=flask.Response(body, status, headers))


class FlaskSession(Session, SessionMixin):
    """``flask.session``: a wsgisession session with Flask's ``SessionMixin`` attributes.

    ``permanent`` chooses the cookie's life: False (Flask's default) gives a cookie that ends
    with the browser session, True one that lasts ``PERMANENT_SESSION_LIFETIME``; either way
    the server ends the session after that long unused. Changes inside nested values are
    saved without ``modified = True``. ``clear()`` also moves the session to a new id, so
    Flask's usual ``session.clear()`` at login or logout leaves the old cookie worthless.
    """

    _exchange: Exchange
    _core: SessionCore
    _flask_accessed: bool = False
    _flask_modified: bool = False
    _expiry_chosen: bool = False

    def _load(self) -> None:
        try:
            super()._load()
        except StoreError as exc:
            raise StoreUnavailable(self._core) from exc

    @property
    def accessed(self) -> bool:
        """True once the request used the session (Flask sets it when ``flask.session`` is used)."""
        return self._loaded or self._flask_accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self._flask_accessed = value

    @property
    def new(self) -> bool:  # type: ignore[override]
        """True when this request started the session."""
        return self.is_new

    @property
    def modified(self) -> bool:
        """True when this request changed the session (nested changes show at the save)."""
        if self._flask_modified:
            return True
        if not self._loaded:
            return False
        return bool(
            self._updates
            or self._removals
            or self._increments
            or self._meta_dirty
            or self._replaces is not None
        )

    @modified.setter
    def modified(self, value: bool) -> None:
        # Not needed for nested changes (they are found at the save); kept for Flask's API.
        self._flask_modified = value

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser session (Flask's ``session.permanent``)."""
        return bool(self.get(_PERMANENT, False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self[_PERMANENT] = bool(value)
        self.set_expiry(self._core.config.max_age if value else None)

    def clear(self) -> None:
        """Remove every key and move the session to a new id (the old record is deleted)."""
        super().clear()
        self.regenerate()

    def set_expiry(self, expiry: Any) -> None:
        """Give this session its own expiry (see :meth:`wsgisession.Session.set_expiry`)."""
        super().set_expiry(expiry)
        self._expiry_chosen = True

    def _before_save(self) -> None:
        """Flask's rules, applied just before the core plans the write."""
        if not self._data:
            if not self._needs_create and self._removals:
                self.destroy()  # emptied: ended, as Flask drops the cookie of an emptied session
            return
        if self._fresh and not self._expiry_chosen:
            super().set_expiry(None)  # a new, non-permanent session: a browser-session cookie


class SessionInterface(_FlaskSessionInterface):
    """Flask's session interface over wsgisession: ``app.session_interface = SessionInterface()``.

    :param store: a :class:`wsgisession.Store`, or a store URL; a per-process
        :class:`MemoryStore` by default. A store built here (from None or a URL) uses tagged
        JSON, like Flask's own session; a ready store keeps its own serializer (pass
        ``serializer=TaggedJSONSerializer()`` to it to keep tuples, bytes and datetimes).
    :param options: wsgisession options (``secret_keys``, ``cookie_name``, ``max_age``,
        ``absolute_timeout``, ``on_store_error``, ...). An option given here wins over the
        app's ``WSGISESSION_*`` key, which wins over Flask's own setting (see :func:`init_app`).

    Each app's settings are read when it is bound: by :func:`init_app`, or at its first
    request. Options are checked at construction.
    """

    def __init__(self, store: Store | ClientSideStore | str | None = None, **options: Any) -> None:
        check_names(options, "SessionInterface()")
        self.store: Store | ClientSideStore = resolve_store(store, _tagged, "store")
        self.options: dict[str, Any] = options
        probe = dict(options)
        if isinstance(self.store, ClientSideStore) or "secret_keys" in probe:
            probe.setdefault("secret_keys", "probe-key")
        build_core(resolve_store(None, None, "store"), FlaskSession, probe, {})  # check now
        #: Where each app keeps its core, in ``app.extensions`` (one key per interface).
        self._key = f"wsgisession.core.{id(self)}"
        self._lock = threading.Lock()
        _connect_flask_login()

    # Binding to an app ------------------------------------------------------------------------

    def bind(self, app: flask.Flask) -> SessionCore:
        """Read *app*'s settings and make its core; errors name the config key to fix."""
        with self._lock:
            core: SessionCore | None = app.extensions.get(self._key)
            if core is None:
                options, sources = _options_from_config(app.config, self.options)
                if isinstance(self.store, ClientSideStore) and not options.get("secret_keys"):
                    raise ConfigurationError(
                        f"{type(self.store).__name__} keeps the whole session in the cookie and "
                        "needs a key to seal it: set app.config['SECRET_KEY'] (e.g. python -c "
                        '"import secrets; print(secrets.token_urlsafe(32))")'
                    )
                core = build_core(self.store, FlaskSession, options, sources)
                app.extensions[self._key] = core
            return core

    def _core(self, app: flask.Flask) -> SessionCore:
        core: SessionCore | None = app.extensions.get(self._key)
        return core if core is not None else self.bind(app)

    def get_cookie_name(self, app: flask.Flask) -> str:
        """The session cookie's name (``WSGISESSION_COOKIE_NAME`` or ``SESSION_COOKIE_NAME``)."""
        return self._core(app).cookie.name

    def get_cookie_domain(self, app: flask.Flask) -> str | None:
        """The session cookie's Domain."""
        return self._core(app).cookie.domain

    def get_cookie_path(self, app: flask.Flask) -> str:
        """The session cookie's Path."""
        return self._core(app).cookie.path

    # Per request ------------------------------------------------------------------------------

    def open_session(self, app: flask.Flask, request: Request) -> FlaskSession:
        """Start the request's exchange; nothing is loaded until the session is used."""
        core = app.extensions.get(self._key) or self.bind(app)
        environ = request.environ
        if core.cookie.path == "/":  # every path is inside it: no need to build the path
            exchange = core.begin(environ.get("HTTP_COOKIE"), request.is_secure)
        else:
            exchange = core.begin(
                environ.get("HTTP_COOKIE"),
                request.is_secure,
                request.script_root + request.path,  # the URL path browsers match cookies on
            )
        if core.describe is not None:
            exchange.client = environ  # for the describe hook, when a login binds
        session: FlaskSession = exchange.session  # type: ignore[assignment]
        session._exchange = exchange
        session._core = core
        return session

    def save_session(self, app: flask.Flask, session: SessionMixin, response: Response) -> None:
        """Let the core write what changed, then apply its headers (or its 503) to *response*."""
        if not isinstance(session, FlaskSession):
            return
        try:
            self._save(session, response)
        finally:
            session._exchange.close()  # no session <-> exchange cycle left for the collector

    def _save(self, session: FlaskSession, response: Response) -> None:
        """save_session's work: the core's write and headers, or its 503."""
        if not session._loaded:
            if session._flask_accessed:
                response.vary.add("Cookie")
            return
        failed = response.status_code >= 500
        if not failed and session.store_error is None:
            session._before_save()
        given = response.headers.to_wsgi_list()
        outcome = session._exchange.finish(response.status_code, given, failed=failed)
        if outcome.unavailable:
            _answer_unavailable(session._core, response)
            return
        headers = outcome.headers
        kept = len(given)
        if headers[:kept] == given:
            # The usual case: the core only added headers (Vary, Cache-Control, Set-Cookie).
            for name, value in headers[kept:]:
                response.headers.add(name, value)
        else:
            response.headers = Headers(headers)  # it changed one (Vary or Cache-Control)


def _answer_unavailable(core: SessionCore, response: Response) -> None:
    """Turn *response* into the core's 503, or keep the app's own 503 page and add Retry-After."""
    status, headers, body = core.unavailable()
    if response.status_code == status:
        for name, value in headers:
            if name.lower() in ("retry-after", "cache-control"):
                response.headers[name] = value
        return
    response.status_code = status
    response.headers = Headers(headers)
    response.set_data(body)


def init_app(
    app: flask.Flask, store: Store | ClientSideStore | str | None = None, **options: Any
) -> SessionInterface:
    """Make wsgisession *app*'s session, configured from ``app.config``; return the interface.

    ``WSGISESSION_STORE`` is the store URL (``sqlite:///sessions.db``, ``redis://...``,
    ``postgresql://...``; a per-process memory store when unset) unless *store* is given.
    ``WSGISESSION_<OPTION>`` sets any wsgisession option (``WSGISESSION_ABSOLUTE_TIMEOUT``,
    ``WSGISESSION_ON_STORE_ERROR``, ...). Flask's own keys fill in the rest:
    ``SECRET_KEY`` + ``SECRET_KEY_FALLBACKS`` → ``secret_keys``; ``SESSION_COOKIE_NAME``,
    ``_DOMAIN``, ``_PATH``, ``_HTTPONLY``, ``_SECURE`` (True → always Secure; Flask's default
    False → Secure on HTTPS requests), ``_SAMESITE`` (Flask's default None → Lax),
    ``_PARTITIONED``; ``PERMANENT_SESSION_LIFETIME`` → ``max_age``;
    ``SESSION_REFRESH_EACH_REQUEST=False`` → no refresh on reads (``touch_interval=max_age``).
    Everything is checked now; an error names the config key to fix.
    """
    if store is None and app.config.get(STORE_KEY):
        store = resolve_store(app.config[STORE_KEY], _tagged, f"app.config[{STORE_KEY!r}]")
    interface = SessionInterface(store, **options)
    interface.bind(app)
    app.session_interface = interface
    app.extensions["wsgisession"] = interface
    return interface


def _options_from_config(
    config: Mapping[str, Any], given: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The core options for an app: *given*, else ``WSGISESSION_*``, else Flask's settings.

    Returns the options and, for each, the config key it came from (for error messages).
    """
    options: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def put(option: str, value: Any, key: str) -> None:
        options[option] = value
        sources[option] = f"app.config[{key!r}]"

    keys = [config.get("SECRET_KEY"), *(config.get("SECRET_KEY_FALLBACKS") or [])]
    if keys[0]:
        put("secret_keys", keys, "SECRET_KEY")
    put("cookie_name", config.get("SESSION_COOKIE_NAME") or "session", "SESSION_COOKIE_NAME")
    if config.get("SESSION_COOKIE_DOMAIN"):
        put("cookie_domain", config["SESSION_COOKIE_DOMAIN"], "SESSION_COOKIE_DOMAIN")
    path = config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/"
    put("cookie_path", path, "SESSION_COOKIE_PATH")
    put(
        "cookie_httponly",
        bool(config.get("SESSION_COOKIE_HTTPONLY", True)),
        "SESSION_COOKIE_HTTPONLY",
    )
    if config.get("SESSION_COOKIE_SECURE"):
        put("cookie_secure", True, "SESSION_COOKIE_SECURE")
    if config.get("SESSION_COOKIE_SAMESITE") is not None:
        put("cookie_samesite", config["SESSION_COOKIE_SAMESITE"], "SESSION_COOKIE_SAMESITE")
    if config.get("SESSION_COOKIE_PARTITIONED"):
        put("cookie_partitioned", True, "SESSION_COOKIE_PARTITIONED")
    lifetime = config.get("PERMANENT_SESSION_LIFETIME", timedelta(days=31))
    seconds = int(lifetime.total_seconds()) if isinstance(lifetime, timedelta) else lifetime
    put("max_age", seconds, "PERMANENT_SESSION_LIFETIME")

    for key, value in config.items():
        if not key.startswith(_PREFIX) or key == STORE_KEY:
            continue
        option = key[len(_PREFIX) :].lower()
        if option not in OPTION_NAMES:
            raise ConfigurationError(
                f"app.config[{key!r}] is not a wsgisession setting; use {STORE_KEY} or one of "
                + ", ".join(_PREFIX + name.upper() for name in sorted(OPTION_NAMES))
            )
        put(option, value, key)
    for option, value in given.items():
        options[option] = value
        sources.pop(option, None)
    if (
        config.get("SESSION_REFRESH_EACH_REQUEST", True) is False
        and "touch_interval" not in options
    ):
        # Reads never extend the session: it ends max_age after its last change, as in Flask.
        options["touch_interval"] = options["max_age"]
        sources["touch_interval"] = "app.config['SESSION_REFRESH_EACH_REQUEST']"
    return options, sources


# Flask-Login ----------------------------------------------------------------------------------

_connected = False


def _connect_flask_login() -> None:
    """Listen to Flask-Login's login and logout signals, when Flask-Login is installed."""
    global _connected
    if _connected:
        return
    try:
        from flask_login import signals
    except ImportError:
        return
    signals.user_logged_in.connect(_on_login)
    signals.user_loaded_from_cookie.connect(_on_login)
    signals.user_logged_out.connect(_on_logout)
    _connected = True


def _current() -> FlaskSession | None:
    session = flask.session._get_current_object()  # type: ignore[attr-defined]
    return session if isinstance(session, FlaskSession) else None


def _on_login(sender: object, user: object = None, **extra: object) -> None:
    """A user logged in (or came back through the remember-me cookie): new id, bound to them.

    The session moves to a new id (no fixation) and is bound to ``user.get_id()``, so it is
    listed by ``session.user_sessions()`` and ended by ``wsgisession.revoke_user()``.
    """
    session = _current()
    if session is not None:
        session.regenerate()
        get_id = getattr(user, "get_id", None)
        user_id = get_id() if callable(get_id) else None
        session.set_user(None if user_id is None else str(user_id))


def _on_logout(sender: object, user: object = None, **extra: object) -> None:
    """A user logged out: what is left of the session moves to a new id, bound to no one."""
    session = _current()
    if session is not None:
        session.regenerate()
        session.set_user(None)
