"""SessionMiddleware: the only module that sees WSGI, and the one that joins all the others.

Per request it puts a lazy :class:`~wsgisession.session.Session` in the environ and, when the
application starts its response, asks the session what must be written, writes it to the store
and adds the cookie. A request that never touches the session costs one small object.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from .cookies import CookieSettings
from .errors import ConfigurationError, SessionNotInstalledError, StoreError
from .records import Record
from .session import Plan, Session, SessionConfig, SessionContext
from .signing import hash_id, log_id, new_id, normalize_keys
from .stores.base import ClientSideStore, Store
from .stores.memory import MemoryStore

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["SessionMiddleware", "get_session"]

logger = logging.getLogger("wsgisession")

_UNAVAILABLE_BODY = b"Service temporarily unavailable. Please try again shortly.\n"


def _time_now() -> float:
    # Looked up at call time, so a test that patches time.time moves this clock too.
    return time.time()


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
    """

    def __init__(
        self,
        app: WSGIApplication,
        store: Store | None = None,
        *,
        secret_keys: str | Sequence[str] | None = None,
        cookie_name: str = "wsgisession",
        cookie_path: str = "/",
        cookie_domain: str | None = None,
        cookie_secure: bool | None = None,
        cookie_httponly: bool = True,
        cookie_samesite: str | None = "Lax",
        max_age: int = 1209600,
        touch_interval: int | None = None,
        absolute_timeout: int | None = None,
        max_session_size: int | None = 65536,
        environ_key: str = "wsgisession",
        on_store_error: Literal["error", "continue"] = "error",
        clock: Callable[[], float] | None = None,
        trust_forwarded_proto: bool = False,
        retry_after: int = 5,
    ) -> None:
        if on_store_error not in ("error", "continue"):
            raise ConfigurationError(
                f"on_store_error={on_store_error!r} is unknown; use 'error' (a 503) or "
                "'continue' (an empty session that is not saved)"
            )
        if not isinstance(max_age, int) or isinstance(max_age, bool) or max_age <= 0:
            raise ConfigurationError(
                f"max_age={max_age!r} must be a positive number of seconds (default 1209600)"
            )
        if store is not None and not isinstance(store, Store):
            raise ConfigurationError(
                f"store={store!r} is not a wsgisession Store; pass MemoryStore(), "
                "SqliteStore(path), RedisStore(url), PostgresStore(dsn) or CookieStore()"
            )
        #: The wrapped application.
        self.app = app
        #: Where sessions live.
        self.store: Store = store if store is not None else MemoryStore()
        #: The session cookie's settings.
        self.cookie = CookieSettings(
            name=cookie_name,
            path=cookie_path,
            domain=cookie_domain,
            secure=cookie_secure,
            httponly=cookie_httponly,
            samesite=cookie_samesite,
            secret_keys=secret_keys,
        )
        #: The sessions' lifecycle settings.
        self.config = SessionConfig(
            max_age=max_age,
            touch_interval=max_age // 10 if touch_interval is None else touch_interval,
            absolute_timeout=absolute_timeout,
            max_size=max_session_size,
            raise_store_errors=on_store_error == "error",
        )
        self.environ_key = environ_key
        self.on_store_error = on_store_error
        self.trust_forwarded_proto = trust_forwarded_proto
        self.retry_after = retry_after
        self._now: Callable[[], float] = clock if clock is not None else _time_now
        self._rotating = self.cookie.signer is not None and self.cookie.signer.key_count > 1
        #: The store when it keeps sessions in the cookie (CookieStore), else None.
        self._client_side: ClientSideStore | None = None
        if isinstance(self.store, ClientSideStore):
            keys = normalize_keys(secret_keys)
            if not keys:
                raise ConfigurationError(
                    f"{type(self.store).__name__} keeps the whole session in the cookie and "
                    "needs secret_keys to encrypt it: SessionMiddleware(app, store=CookieStore(), "
                    "secret_keys=['a long random key']) (e.g. python -c \"import secrets; "
                    'print(secrets.token_urlsafe(32))")'
                )
            self.store.use_keys(keys)
            self._client_side = self.store
        #: The last session id loaded, with its store key (see _store_key).
        self._last_key: tuple[str, str] = ("", "")
        #: What every session of this middleware shares, bound once.
        self._context = SessionContext(
            self._load if self._client_side is None else self._load_sealed,
            self.config,
            self._now,
            new_id,
            self.store.serializer,
        )

    # Per request ------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        session = _RequestSession(self, environ, start_response)
        environ[self.environ_key] = session
        try:
            result = self.app(environ, session._respond)
        except StoreError as exc:
            if session._started:
                raise
            status, headers = self._unavailable(exc)
            start_response(status, headers, None)
            return [_UNAVAILABLE_BODY]
        if session._failed:
            _close(result)
            return [_UNAVAILABLE_BODY]
        if session._started:
            return result
        return self._late_start(result, session)

    def _late_start(self, result: Iterable[bytes], session: _RequestSession) -> Iterator[bytes]:
        """Serve an app that calls start_response while iterating; replace a failed body."""
        try:
            for chunk in result:
                if session._failed:
                    yield _UNAVAILABLE_BODY
                    return
                yield chunk
        finally:
            _close(result)

    def _load(self, environ: WSGIEnvironment) -> tuple[str, Record] | None:
        """The session's loader: a valid cookie costs one store call, anything else none."""
        header = environ.get("HTTP_COOKIE")
        if not header:
            return None
        parsed = self.cookie.read(header)
        if parsed is None:
            return None
        session_id = parsed.session_id
        key = hash_id(session_id)
        self._last_key = (session_id, key)
        record = self.store.load(key, self._now())
        if record is None:
            return None
        return session_id, record

    def _store_key(self, session_id: str) -> str:
        """The store key of *session_id*, hashed once per request: at load, reused at save.

        The memo is matched by identity (the very id object the load returned), so a thread
        never takes another request's key and no id is compared by content.
        """
        last = self._last_key
        return last[1] if last[0] is session_id else hash_id(session_id)

    def _is_https(self, environ: WSGIEnvironment) -> bool:
        if environ.get("wsgi.url_scheme") == "https":
            return True
        if self.trust_forwarded_proto:
            forwarded = str(environ.get("HTTP_X_FORWARDED_PROTO", ""))
            return forwarded.split(",")[0].strip().lower() == "https"
        return False

    def _finish(
        self,
        session: Session,
        environ: WSGIEnvironment,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: OptExcInfo | None,
    ) -> list[tuple[str, str]]:
        """Save what the session says must be saved and return the headers to send."""
        headers = _add_vary_cookie(headers)
        error = session.store_error
        if error is not None:
            self._log_store_error(error)
            if self.on_store_error == "error":
                raise error
            return headers
        if (exc_info is not None and exc_info[0] is not None) or status[:1] == "5":
            return headers  # a failed request saves nothing
        plan = session.plan()
        if plan is None:
            return headers
        sealed = self._client_side is not None
        needs_cookie = plan.set_cookie or plan.create is not None
        secure = cookie_allowed = True  # not needed when no cookie can be sent
        if needs_cookie or sealed or plan.expire_cookie or self._rotating:
            https = self._is_https(environ)
            secure = https if self.cookie.secure is None else self.cookie.secure
            cookie_allowed = https or not secure
        if not cookie_allowed and (needs_cookie or (sealed and plan.write_id is not None)):
            logger.warning(
                "a session was not saved: cookie_secure=True but the request came over plain "
                "HTTP, so its cookie could not be sent (serve over HTTPS, or see "
                "trust_forwarded_proto when behind a TLS proxy)"
            )
            plan = Plan(delete_id=plan.delete_id) if plan.delete_id else None
            if plan is None:
                return headers
        cookie: str | None = None
        written = False
        if self._client_side is None:
            try:
                written = self._write(plan)
            except StoreError as exc:
                if self.on_store_error == "error":
                    raise
                self._log_store_error(exc)  # carry on: the response goes out, unsaved
                return headers
        if self._client_side is not None:
            cookie = self._seal(self._client_side, plan, secure, cookie_allowed)
        elif written and plan.write_id is not None:
            if plan.set_cookie or (self._rotating and self._needs_resign(environ)):
                cookie = self.cookie.build(plan.write_id, plan.cookie_max_age, secure)
        elif plan.expire_cookie and cookie_allowed:
            cookie = self.cookie.build_expired(secure)
        if cookie is not None:
            if not any(name.lower() == "cache-control" for name, _ in headers):
                headers.append(("Cache-Control", "private"))
            headers.append(("Set-Cookie", cookie))
        return headers

    def _seal(
        self, store: ClientSideStore, plan: Plan, secure: bool, cookie_allowed: bool
    ) -> str | None:
        """Carry out *plan* for a client-side store: the cookie carries the whole session.

        The cookie is re-issued only when the plan writes (the session changed or its expiry
        refresh is due), so a read-only request sends no Set-Cookie.
        """
        if plan.write_id is None:
            if plan.expire_cookie and cookie_allowed:
                return self.cookie.build_expired(secure)
            return None
        if plan.create is not None:
            assert plan.meta is not None
            data, meta, expires = plan.create, plan.meta, plan.expires
        else:
            changes = plan.changes
            assert changes is not None and changes.loaded is not None
            loaded = changes.loaded
            data = changes.result
            meta = loaded.meta if changes.meta is None else changes.meta
            expires = loaded.expires if changes.expires is None else changes.expires
        value = store.seal(plan.write_id, data, meta, expires)
        return self.cookie.build_value(value, plan.cookie_max_age, secure)

    def _load_sealed(self, environ: WSGIEnvironment) -> tuple[str, Record] | None:
        """The session's loader for a client-side store: open the cookie, no server call.

        Values without the shape of a sealed session are dropped before the store sees them;
        when two cookies open to different sessions, neither is used.
        """
        assert self._client_side is not None
        now = self._now()
        found: tuple[str, Record] | None = None
        for value in self.cookie.read_sealed(environ.get("HTTP_COOKIE") or ""):
            opened = self._client_side.unseal(value, now)
            if opened is None:
                continue
            if found is not None and found[0] != opened[0]:
                logger.warning(
                    "request carried two different valid %r cookies; neither was used and a "
                    "fresh session starts",
                    self.cookie.name,
                )
                return None
            found = opened
        return found

    def _write(self, plan: Plan) -> bool:
        """Carry out *plan* on the store in one call; return False when the record was gone."""
        store = self.store
        now = self._now()
        old = self._store_key(plan.delete_id) if plan.delete_id is not None else None
        if plan.write_id is None:
            if old is not None:
                store.delete(old)
            return False
        key = self._store_key(plan.write_id)
        if plan.create is not None:
            assert plan.meta is not None
            # False: the session it replaces ended meanwhile (regenerate after a logout).
            return store.create(key, plan.create, plan.meta, plan.expires, now, old) is not False
        assert plan.changes is not None
        saved = store.save(key, plan.changes, now)
        if not saved:
            logger.info("session %s ended before this request saved it; not recreated", log_id(key))
        return saved

    def _needs_resign(self, environ: WSGIEnvironment) -> bool:
        """Tell whether the request's cookie was signed with an older key."""
        parsed = self.cookie.read(environ.get("HTTP_COOKIE", ""))
        return parsed is not None and not parsed.current

    def _log_store_error(self, error: StoreError) -> None:
        """Log a store failure once per request, with no session id in it."""
        if getattr(error, "_wsgisession_logged", False):
            return
        error._wsgisession_logged = True  # type: ignore[attr-defined]
        logger.error(
            "session store failed (%s: %s); policy on_store_error=%r",
            type(error).__name__,
            error,
            self.on_store_error,
        )

    def _unavailable(self, error: StoreError) -> tuple[str, list[tuple[str, str]]]:
        """The 503 sent when the store fails under the 'error' policy (logged once)."""
        self._log_store_error(error)
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(_UNAVAILABLE_BODY))),
            ("Retry-After", str(self.retry_after)),
            ("Cache-Control", "no-store"),
        ]
        return "503 Service Unavailable", headers


class _RequestSession(Session):
    """The session of one request, whose ``_respond`` is the start_response the app is given.

    One object per request carries both, so a request that never touches the session costs
    little more than this object. Views see a plain :class:`Session`.
    """

    __slots__ = ("_middleware", "_start_response", "_started", "_failed")

    def __init__(
        self, middleware: SessionMiddleware, environ: WSGIEnvironment, start_response: StartResponse
    ) -> None:
        # Session's own slots are set here rather than through Session.__init__: one
        # call less on every request, the path a request that never reads the session takes.
        self._ctx = middleware._context
        self._source = environ  # what the middleware's loader reads the cookie from
        self._loaded = False
        self._middleware = middleware
        self._start_response = start_response
        self._started = False
        self._failed = False

    def _respond(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        """Save the session as the response starts, then start it with the session's headers."""
        self._started = True
        if self._loaded:
            middleware = self._middleware
            try:
                headers = middleware._finish(self, self._source, status, headers, exc_info)
            except StoreError as exc:
                self._failed = True
                return self._start_response(*middleware._unavailable(exc), exc_info)
        return self._start_response(status, headers, exc_info)


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def _add_vary_cookie(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return a copy of *headers* with ``Cookie`` among the Vary values (the session was read)."""
    for index, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            tokens = [token.strip().lower() for token in value.split(",")]
            headers = list(headers)
            if "cookie" not in tokens and "*" not in tokens:
                headers[index] = (name, f"{value}, Cookie")
            return headers
    return [*headers, ("Vary", "Cookie")]
