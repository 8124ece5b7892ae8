"""SessionMiddleware: the WSGI front end over the sans-I/O core (:mod:`wsgisession.core`).

Per request it takes the ``Cookie`` header and the scheme from the environ, puts the core's
lazy :class:`~wsgisession.session.Session` in the environ and, when the application starts its
response, hands the status and headers to the core, which saves the session and says which
headers to send (or that the store failed and the 503 goes out instead). A request that never
touches the session costs two small objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

from .cookies import CookieSettings, SameSite
from .core import Exchange, SessionCore, _with_vary_cookie
from .errors import ConfigurationError, SessionNotInstalledError, StoreError, check_type
from .session import Session, SessionConfig
from .stores.base import ClientSideStore, Store

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "get_session"]

_new_object = object.__new__
_STATUS_LINES = {503: "503 Service Unavailable"}
#: The status code of every standard status line: a dict lookup instead of parsing one.
_STATUS_CODES = {f"{status.value} {status.phrase}": status.value for status in HTTPStatus}


def _status_code(status: str) -> int:
    """The code of a WSGI status line; 500 for one no server would send (nothing is saved)."""
    code = _STATUS_CODES.get(status)
    if code is not None:
        return code
    try:
        return int(status[:3])
    except ValueError:
        return 500


def get_session(environ: WSGIEnvironment, environ_key: str = "wsgisession") -> Session:
    """Return the request's session; raise SessionNotInstalledError when there is none."""
    session = environ.get(environ_key)
    if not isinstance(session, Session):
        raise SessionNotInstalledError(
            f"no session at environ[{environ_key!r}]: wrap the WSGI application with "
            "SessionMiddleware(app, store=...) (and pass the same environ_key, if you changed it)"
        )
    return session


class SessionMiddleware:
    """Server-side sessions for any WSGI application.

    ``SessionMiddleware(app, store=SqliteStore("sessions.db"))`` puts a dict-like session in
    ``environ["wsgisession"]``. The session is saved when the application calls
    ``start_response``, so changes made while the body is being produced are not saved, and
    nothing is saved when the application raises, passes ``exc_info`` or answers with a 5xx.

    :param app: the WSGI application to wrap.
    :param store: where sessions live; a per-process :class:`MemoryStore` by default. A
        client-side store (``CookieStore``) keeps the whole session, sealed, in the cookie.
    :param secret_keys: a str or list of str, newest first. When given the cookie is signed,
        and a cookie with a bad signature never costs a store query. Rotate by putting the new
        key first and keeping the old one until its cookies have been re-signed or expired.
        Required with ``CookieStore``, whose encryption keys are derived from them.
    :param cookie_name: the cookie's name; a ``__Host-`` prefix (with ``cookie_secure=True``)
        stops sibling domains from tossing cookies in.
    :param cookie_path: the cookie's Path.
    :param cookie_domain: the cookie's Domain; None (the default) keeps it to this host.
    :param cookie_secure: None sets Secure exactly when the request is HTTPS; True always
        (then no cookie is sent over plain HTTP); False never.
    :param cookie_httponly: hide the cookie from JavaScript (default True).
    :param cookie_samesite: ``"Strict"``, ``"Lax"`` (default) or ``"None"`` (needs Secure).
    :param cookie_partitioned: add the ``Partitioned`` attribute (CHIPS), for an app embedded
        in other sites: browsers then keep its cookie apart for each top-level site. Needs
        ``cookie_secure=True``.
    :param max_age: idle timeout in seconds (14 days). Every use keeps the session alive.
    :param touch_interval: the refreshed expiry is written at most once per this many seconds;
        ``max_age // 10`` by default.
    :param absolute_timeout: seconds after creation when the session ends however active it
        is; ``regenerate()`` does not reset it. None (the default) for no such limit.
    :param max_session_size: the largest session in bytes of JSON (64 KiB); setting a value
        that would pass it raises SessionTooLargeError and leaves the session as it was.
        None for no limit.
    :param environ_key: where the session is put in the environ.
    :param on_store_error: ``"error"`` answers a store failure with a 503 and ``Retry-After``;
        ``"continue"`` serves the request with an empty session that is not saved.
    :param clock: seconds since the epoch, for tests; ``time.time`` by default.
    :param trust_forwarded_proto: treat ``X-Forwarded-Proto: https`` as HTTPS. Only turn it
        on behind a proxy that sets (and overwrites) that header.
    :param retry_after: the ``Retry-After`` seconds of the 503.
    :param describe: ``describe(environ) -> dict``, called when a request binds its session to
        a user (``session.set_user()``); the dict (JSON values) is kept with that session as
        its ``info`` and shown by ``user_sessions()``, e.g. the user agent for a "your
        sessions" page. None (the default) keeps nothing about the client.
    """

    def __init__(
        self,
        app: WSGIApplication,
        store: Store | ClientSideStore | None = None,
        *,
        secret_keys: str | Sequence[str] | None = None,
        cookie_name: str = "wsgisession",
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        cookie_secure: bool | None = None,
        cookie_httponly: bool = True,
        cookie_samesite: SameSite | None = "Lax",
        cookie_partitioned: bool = False,
        max_age: int = 1209600,
        touch_interval: int | None = None,
        absolute_timeout: int | None = None,
        max_session_size: int | None = 65536,
        environ_key: str = "wsgisession",
        on_store_error: Literal["error", "continue"] = "error",
        clock: Callable[[], float] | None = None,
        trust_forwarded_proto: bool = False,
        retry_after: int = 5,
        describe: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None,
    ) -> None:
        _check_wsgi_options(environ_key, trust_forwarded_proto)
        #: The sans-I/O core that does the work; every option but the WSGI ones is its.
        self.core = SessionCore(
            store,
            secret_keys=secret_keys,
            cookie_name=cookie_name,
            cookie_path=cookie_path,
            cookie_domain=cookie_domain,
            cookie_secure=cookie_secure,
            cookie_httponly=cookie_httponly,
            cookie_samesite=cookie_samesite,
            cookie_partitioned=cookie_partitioned,
            max_age=max_age,
            touch_interval=touch_interval,
            absolute_timeout=absolute_timeout,
            max_session_size=max_session_size,
            on_store_error=on_store_error,
            clock=clock,
            retry_after=retry_after,
            describe=describe,
        )
        #: The wrapped application.
        self.app = app
        #: Where the session is put in the environ.
        self.environ_key = environ_key
        #: Whether ``X-Forwarded-Proto: https`` counts as HTTPS.
        self.trust_forwarded_proto = trust_forwarded_proto
        self._now = self.core.clock
        # Under cookie_path="/" every request path is inside it: no need to read the path.
        self._path_matters = self.core.cookie.path != "/"
        # Only an application that asks for describe hands its environ to the exchange.
        self._exchange_class: type[_WSGIExchange] = (
            _WSGIExchange if describe is None else _DescribingExchange
        )

    @property
    def store(self) -> Store | ClientSideStore:
        """Where sessions live."""
        return self.core.store

    @property
    def cookie(self) -> CookieSettings:
        """The session cookie's settings."""
        return self.core.cookie

    @property
    def config(self) -> SessionConfig:
        """The sessions' lifecycle settings."""
        return self.core.config

    # Per request ------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("wsgi.url_scheme") == "https":
            https = True
        elif self.trust_forwarded_proto:
            forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO", ""))
            https = forwarded.split(",")[0].strip().lower() == "https"
        else:
            https = False
        # core.begin(), as the WSGI exchange that also carries this request's WSGI side.
        kind = self._exchange_class
        if self._path_matters:
            path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
            exchange = kind(self.core, environ.get("HTTP_COOKIE"), https, path or "/")
        else:
            # What kind(core, cookie, https) does, without the two constructor calls, on the
            # path every request takes (about 90 ns of an untouched request's 600). Keep it in
            # step with Exchange.__init__: tests/test_middleware.py compares the two.
            core = self.core
            exchange = _new_object(kind)
            exchange.core = core
            exchange.https = https
            exchange.path = "/"
            exchange._cookie = environ.get("HTTP_COOKIE")
            session = exchange.session = _new_object(Session)
            session._ctx = core._context
            session._source = exchange
            session._loaded = False
        if kind is _DescribingExchange:
            exchange.client = environ  # for the describe hook, until the response starts
        exchange.start_response = start_response
        exchange.started = False
        exchange.failed = None
        environ[self.environ_key] = exchange.session
        try:
            result = self.app(environ, exchange.start)
        except StoreError as exc:
            if exchange.started:
                raise
            exchange.finish(500, [], error=exc)  # logged once, nothing saved
            status, headers, body = self.core.unavailable()
            start_response(_STATUS_LINES[status], headers, None)
            return [body]
        if exchange.failed is not None:
            _close(result)
            return [exchange.failed]
        if exchange.started:
            return result
        return _late_start(result, exchange)


#: CGI variables (REQUEST_METHOD, HTTP_COOKIE, ...): the server's names in the environ.
_CGI_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def _check_wsgi_options(environ_key: object, trust_forwarded_proto: object) -> None:
    """Refuse WSGI options that cannot work, saying what to give instead."""
    check_type("environ_key", environ_key, (str,), "a str, e.g. environ_key='wsgisession'")
    assert isinstance(environ_key, str)
    if not environ_key or environ_key.startswith("wsgi.") or _CGI_NAME.fullmatch(environ_key):
        raise ConfigurationError(
            f"environ_key={environ_key!r} is "
            + ("empty" if not environ_key else "a name the WSGI server owns (PEP 3333)")
            + "; use a lowercase name of your own, e.g. environ_key='wsgisession' (the default) "
            "or 'myapp.session', and pass the same one to get_session()"
        )
    check_type(
        "trust_forwarded_proto",
        trust_forwarded_proto,
        (bool,),
        "True (only behind a proxy that sets X-Forwarded-Proto) or False (the default)",
    )


class _WSGIExchange(Exchange):
    """One request's exchange with its WSGI side: the start_response the app is given."""

    __slots__ = ("start_response", "started", "failed", "accessed")

    #: The server's start_response.
    start_response: StartResponse
    #: True once the application called start_response.
    started: bool
    #: The 503's body when the store failed and the 503 went out instead.
    failed: bytes | None
    #: True when the session had been used when the response started (unset otherwise).
    accessed: bool

    def start(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        """Save the session as the response starts, then start it with the session's headers.

        Then the exchange lets go of the session, as :meth:`Exchange.close` does (inline: it
        is on every request's path): the environ holds the session and the session this
        exchange, so the request's objects are freed when the server drops the environ, not
        later by the garbage collector.
        """
        self.started = True
        try:
            session = self.session
        except AttributeError:
            # Called again, with exc_info, after an error: the first call saved what could be
            # saved; the error page only says that the response varies by the cookie.
            if getattr(self, "accessed", False):
                headers = _with_vary_cookie(headers)
            return self.start_response(status, headers, exc_info)
        if session._loaded:  # session.accessed, without the property, for a plain Session
            self.accessed = True
            code = _STATUS_CODES.get(status) or _status_code(status)
            failed = exc_info is not None and exc_info[0] is not None
            outcome = self.finish(code, headers, failed=failed)
            del self.session
            if outcome.unavailable:
                code, headers, self.failed = self.core.unavailable()
                return self.start_response(_STATUS_LINES[code], headers, exc_info)
            headers = outcome.headers
        else:
            del self.session
        return self.start_response(status, headers, exc_info)


class _DescribingExchange(_WSGIExchange):
    """The exchange of a middleware with ``describe``: it holds the environ for the hook.

    Only until the response starts, when nothing can bind the session any more: the environ
    holds the session, which holds this exchange, and a cycle left in place would be
    collected by the garbage collector instead of freed when the request ends.
    """

    __slots__ = ()

    def start(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        """Start the response (see :meth:`_WSGIExchange.start`), then let go of the environ."""
        try:
            return super().start(status, headers, exc_info)
        finally:
            self.client = None


def _late_start(result: Iterable[bytes], exchange: _WSGIExchange) -> Iterator[bytes]:
    """Serve an app that calls start_response while iterating; replace a failed body."""
    try:
        for chunk in result:
            if exchange.failed is not None:
                yield exchange.failed
                return
            yield chunk
    finally:
        _close(result)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()
