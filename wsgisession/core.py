"""The sans-I/O session core: one request's session life, with no WSGI and no framework in it.

Every front end (the WSGI :class:`~wsgisession.middleware.SessionMiddleware`, the framework
integrations) is a page over this module::

    core = SessionCore(store, secret_keys=[...])
    exchange = core.begin(cookie_header, https)      # per request; loads nothing yet
    view(exchange.session)                           # the lazy Session
    outcome = exchange.finish(status, headers)       # the store write, or the outage policy
    if outcome.unavailable:
        status, headers, body = core.unavailable()   # the 503
    else:
        headers = outcome.headers                    # with Vary, Cache-Control and Set-Cookie

From the request it takes the ``Cookie`` header (or the cookie's value), whether the request
came over HTTPS and the clock; at the end, from the response's status and headers, it writes
what the session's :class:`~wsgisession.policy.Plan` says and decides the ``Set-Cookie``,
``Vary`` and ``Cache-Control`` headers. Where sessions live is one of two persistence
strategies: :class:`ServerSide` (a :class:`~wsgisession.stores.base.Store`; the cookie carries
the id) and :class:`ClientSide` (a :class:`~wsgisession.stores.base.ClientSideStore`; the
cookie carries the whole session, sealed).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Generic, Literal, TypeVar

from .cookies import COOKIE_SIZE_LIMIT, CookieSettings, ParsedCookie, SameSite, path_matches
from .errors import ConfigurationError, ConfigurationTypeError, StoreError, a_type, check_type
from .policy import Plan
from .records import Record
from .session import Session, SessionConfig, SessionContext, _time_now
from .signing import hash_id, log_id, new_id, normalize_keys
from .stores.base import ClientSideStore, Store
from .stores.memory import MemoryStore
from .users import ClientSideUsers, StoreUsers

__all__ = ["ClientSide", "Exchange", "Outcome", "ServerSide", "SessionCore"]

logger = logging.getLogger("wsgisession")

#: The body of the 503 a store failure is answered with: generic, no detail of the store.
UNAVAILABLE_BODY: Final = b"Service temporarily unavailable. Please try again shortly.\n"

Headers = list[tuple[str, str]]

#: The most session ids one request may make the core look up (see ServerSide.load).
MAX_CANDIDATES: Final = 3
#: The longest Max-Age a client-side budget makes room for: ten digits, 317 years.
_LONGEST_MAX_AGE: Final = 9_999_999_999
#: Cache-Control directives, split on the commas outside quoted strings.
_DIRECTIVE_RE = re.compile(r'(?:[^,"]|"(?:\\.|[^"\\])*")+')


class _Throttled:
    """A warning logged at most once a minute, with a count of the ones held back.

    For what a hostile client can cause on every request (planted cookies): one line a minute
    says it happens without letting anyone fill the logs.
    """

    __slots__ = ("_interval", "_next", "_held", "_lock")

    def __init__(self, interval: float = 60.0) -> None:
        self._interval = interval
        self._next = 0.0
        self._held = 0
        self._lock = threading.Lock()

    def warning(self, message: str, *args: Any) -> None:
        """Log *message* unless one was logged in the last interval; then count it instead."""
        now = time.monotonic()
        with self._lock:
            if now < self._next:
                self._held += 1
                return
            held, self._held = self._held, 0
            self._next = now + self._interval
        if held:
            message += " (%d more like it since the last such line were not logged)"
            args = (*args, held)
        logger.warning(message, *args)


class _Expire:
    """The persistence strategies' answer "expire the cookie" (a sentinel, never a value)."""

    __slots__ = ()


_EXPIRE: Final = _Expire()

_S = TypeVar("_S", Store, ClientSideStore)


class _Persistence(Generic[_S]):
    """What both persistence strategies hold: their store, the cookie settings and the clock."""

    __slots__ = ("store", "_cookie", "_clock", "_tossing")

    def __init__(
        self,
        store: _S,
        cookie: CookieSettings,
        clock: Callable[[], float],
        tossing: _Throttled | None = None,
    ) -> None:
        #: Where the sessions live: a Store's records, or a ClientSideStore that seals them.
        self.store: _S = store
        self._cookie = cookie
        self._clock = clock
        self._tossing = tossing if tossing is not None else _Throttled()


class ServerSide(_Persistence[Store]):
    """Sessions in a server-side :class:`Store`; the cookie carries the id (signed with keys).

    A cookie that fails the shape or signature check never costs a store call; a valid one
    costs one load, and the end of the request at most one write.
    """

    __slots__ = ()

    #: False: the store, not the cookie, holds the session.
    client_side: Final = False

    def load(self, exchange: Exchange) -> tuple[str, Record] | None:
        """The session's loader: the id from the request's cookie, and its record, or None."""
        cookie = exchange._cookie
        if not cookie:
            return None
        found = self._cookie.candidates(
            cookie if isinstance(cookie, list) else self._cookie.values(cookie)
        )
        if not found:
            return None
        if len(found) > 1:
            return self._load_one_of(exchange, found)
        parsed = found[0]
        session_id = parsed.session_id
        key = hash_id(session_id)
        exchange._loaded = (session_id, key)  # the loaded id, and its store key
        exchange._stale_signature = parsed.stale_signature
        record = self.store.load(key, self._clock())
        if record is None:
            return None
        return session_id, record

    def _load_one_of(
        self, exchange: Exchange, found: list[ParsedCookie]
    ) -> tuple[str, Record] | None:
        """Several valid ids came in one request: use the one whose session exists, if one does.

        A cookie planted from a sibling domain (cookie tossing) beside the real one would
        otherwise log its victim out. Ids with no record are dropped, at most MAX_CANDIDATES
        lookups; two live sessions are never mixed: neither is used.
        """
        name = self._cookie.name
        advice = "secret_keys and a __Host- cookie name prevent cookie tossing"
        if len(found) > MAX_CANDIDATES:
            self._tossing.warning(
                "a request carried %d different valid %r cookies, more than the %d looked up; "
                "none was used and a fresh session starts (%s)",
                len(found),
                name,
                MAX_CANDIDATES,
                advice,
            )
            return None
        now = self._clock()
        live = []
        for parsed in found:
            key = hash_id(parsed.session_id)
            record = self.store.load(key, now)
            if record is not None:
                live.append((parsed, key, record))
        if len(live) != 1:
            self._tossing.warning(
                "a request carried %d different valid %r cookies and %d of them name a live "
                "session; %s was used and a fresh session starts (%s)",
                len(found),
                name,
                len(live),
                "neither" if len(found) == 2 else "none",
                advice,
            )
            return None
        parsed, key, record = live[0]
        self._tossing.warning(
            "a request carried %d different valid %r cookies; %d named no session and were "
            "ignored, the one live session was used (%s)",
            len(found),
            name,
            len(found) - 1,
            advice,
        )
        exchange._loaded = (parsed.session_id, key)
        exchange._stale_signature = parsed.stale_signature
        return parsed.session_id, record

    def write(self, exchange: Exchange, plan: Plan, cookie_allowed: bool) -> str | _Expire | None:
        """Carry out *plan* on the store in one call; return the cookie value to send, if any.

        Raises StoreError when the store fails; the core applies the outage policy.
        """
        store = self.store
        now = self._clock()
        old = exchange._key_of(plan.delete_id) if plan.delete_id is not None else None
        session_id = plan.write_id
        if session_id is None:
            if old is not None:
                store.delete(old)
            return _EXPIRE if plan.expire_cookie and cookie_allowed else None
        key = exchange._key_of(session_id)
        if plan.new_data is not None:
            assert plan.new_meta is not None
            created = store.create(
                key, plan.new_data, plan.new_meta, plan.new_expires, now, replaces=old
            )
            if created is False:  # None, from a store older than the bool, is success
                logger.info(
                    "session %s ended before this request moved it to a new id; no session "
                    "was created",
                    log_id(old or key),
                )
                return None
            return self._cookie.value_for(session_id)
        assert plan.changes is not None
        if not store.save(key, plan.changes, now):
            logger.info("session %s ended before this request saved it; not recreated", log_id(key))
            return None
        if plan.set_cookie or getattr(exchange, "_stale_signature", False):
            # The expiry moved, or the cookie was signed with an older key: send it anew.
            return self._cookie.value_for(session_id)
        return None


class ClientSide(_Persistence[ClientSideStore]):
    """Sessions sealed into the cookie by a :class:`ClientSideStore`; no server state.

    The cookie is re-issued only when the plan writes (the session changed or its expiry
    refresh is due), so a read-only request sends no Set-Cookie.
    """

    __slots__ = ()

    #: True: the cookie holds the whole session.
    client_side: Final = True

    def max_cookie_chars(self) -> int:
        """The most characters a sealed value may take: 4096 bytes less the cookie's attributes.

        Counted for the longest attributes this cookie can get (Secure, a ten-digit Max-Age).
        """
        empty = self._cookie.build_value("", _LONGEST_MAX_AGE, True)
        return COOKIE_SIZE_LIMIT - len(empty)

    def load(self, exchange: Exchange) -> tuple[str, Record] | None:
        """The session's loader: open the cookie, no server call.

        Values without the shape of a sealed session are dropped before the store sees them;
        when two cookies open to different sessions, neither is used.
        """
        cookie = exchange._cookie
        if not cookie:
            return None
        values = cookie if isinstance(cookie, list) else self._cookie.values(cookie)
        now = self._clock()
        found: tuple[str, Record] | None = None
        for value in self._cookie.sealed_candidates(values):
            opened = self.store.unseal(value, now)
            if opened is None:
                continue
            if found is not None and found[0] != opened[0]:
                self._tossing.warning(
                    "a request carried two different valid %r cookies; neither was used and a "
                    "fresh session starts",
                    self._cookie.name,
                )
                return None
            found = opened
        return found

    def write(self, exchange: Exchange, plan: Plan, cookie_allowed: bool) -> str | _Expire | None:
        """Seal the session as *plan* leaves it; return the cookie value to send, if any."""
        session_id = plan.write_id
        if session_id is None:
            return _EXPIRE if plan.expire_cookie and cookie_allowed else None
        if plan.new_data is not None:
            assert plan.new_meta is not None
            data, meta, expires = plan.new_data, plan.new_meta, plan.new_expires
        else:
            changes = plan.changes
            assert changes is not None and changes.loaded is not None
            base = changes.loaded
            data = changes.result
            meta = base.meta if changes.meta is None else changes.meta
            expires = base.expires if changes.expires is None else changes.expires
        return self.store.seal(session_id, data, meta, expires)


class Outcome:
    """What the end of one request comes to: the headers to send, or "answer with the 503".

    Most requests send no cookie, so every field but the headers defaults at the class level,
    and the core makes those outcomes without an ``__init__`` call (:func:`_headers_only`): a
    request that used its session makes one on every response.
    """

    #: True when the store failed under ``on_store_error="error"``: send
    #: :meth:`SessionCore.unavailable` instead of the response.
    unavailable: bool = False
    #: The new cookie value (an id, ``id.signature`` or a sealed session), if one is sent.
    cookie_value: str | None = None
    #: True when the cookie must be expired (the session was destroyed).
    cookie_expired: bool = False
    #: The Max-Age of the cookie sent; None for a browser-session cookie or no cookie.
    cookie_max_age: int | None = None
    _set_cookies: list[str] | None = None
    #: The response's headers with Vary / Cache-Control / Set-Cookie applied.
    headers: Headers

    def __init__(self, headers: Headers, set_cookies: list[str] | None = None) -> None:
        self.headers = headers
        if set_cookies is not None:
            self._set_cookies = set_cookies

    @property
    def set_cookies(self) -> list[str]:
        """The Set-Cookie header values that were added (also in :attr:`headers`)."""
        return [] if self._set_cookies is None else self._set_cookies

    def __repr__(self) -> str:
        # The cookie value is a live credential: never in a repr.
        return (
            f"<Outcome unavailable={self.unavailable} cookie={'set' if self.set_cookies else None}"
            f" expired={self.cookie_expired}>"
        )


_new_object = object.__new__


def _headers_only(headers: Headers) -> Outcome:
    """The outcome "send *headers*, no cookie", made without a call to ``Outcome.__init__``."""
    outcome: Outcome = _new_object(Outcome)
    outcome.headers = headers
    return outcome


def _unavailable(headers: Headers) -> Outcome:
    outcome = _headers_only(headers)
    outcome.unavailable = True
    return outcome


class Exchange:
    """One request's session: made by :meth:`SessionCore.begin`, ended by :meth:`finish`.

    It holds what the request brought (its cookie, HTTPS) and what loading learnt (the store
    key of the loaded id, whether its signature is stale), so nothing of one request lives on
    the shared core. A front end may subclass it to carry its own per-request state in the
    same object (the WSGI middleware does: one object per request is cheaper than two).

    :param core: the core this request belongs to.
    :param cookie: the request's ``Cookie`` header (a str), or the session cookie's values
        as a framework parsed them (a list), or None.
    :param https: True when the request came over HTTPS.
    :param path: the request's URL path, for the check against ``cookie_path``.
    """

    __slots__ = (
        "core",
        "session",
        "https",
        "path",
        "client",
        "_cookie",
        "_loaded",
        "_stale_signature",
        "_logged",
    )

    #: What the core's ``describe`` hook is given when this request binds its session to a
    #: user: the front end sets its request's variables here (Django's ``request.META``).
    #: Opaque to the core; left unset, nothing about the client is described.
    client: Mapping[str, Any] | None
    _loaded: tuple[str, str]  # the loaded id and its store key, once an id was loaded
    _stale_signature: bool  # the loaded id's cookie was signed with an older key
    _logged: bool  # a store failure of this request was logged

    def __init__(
        self, core: SessionCore, cookie: str | list[str] | None, https: bool, path: str = "/"
    ) -> None:
        #: The core this request belongs to.
        self.core = core
        #: True when the request came over HTTPS.
        self.https = https
        #: The request's URL path ("/" when the front end did not say).
        self.path = path
        self._cookie = cookie
        # _loaded (the loaded id and its store key) and _stale_signature are set when an id is
        # loaded, _logged by the first store failure logged: a request that never touches the
        # session pays for none of them.
        #: The request's lazy session.
        self.session: Session
        if core._plain_session:
            # What Session(context, self) does, without the constructor call: every request
            # makes a session, touched or not (about 500 instructions of an untouched 10,000).
            session = _new_object(core.session_class)
            session._ctx = core._context
            session._source = self
            session._loaded = False
            self.session = session
        else:
            self.session = core.session_class(core._context, self)

    def describe(self) -> Mapping[str, Any] | None:
        """Describe the client for a session bound to a user in this request, or None.

        Stored as the session's ``info`` and shown in its user's session list. The core
        knows nothing of the client: it hands the :attr:`client` its front end set (the
        request's variables) to the core's ``describe`` option. Without that option, or
        without a client, it is None and nothing is stored.
        """
        hook = self.core.describe
        if hook is None:
            return None
        client = getattr(self, "client", None)
        if client is None:
            return None
        info = hook(client)
        if info is not None and not isinstance(info, Mapping):
            raise ConfigurationTypeError(
                f"describe={hook!r} returned {a_type(info)}; it must return a dict of JSON "
                "values (e.g. {'user_agent': request.get('HTTP_USER_AGENT', '')}) or None"
            )
        return info

    def close(self) -> None:
        """Let go of the session, once the front end is done with this request.

        The session holds its exchange (it loads through it when first used) and the exchange
        its session: dropping this half lets both, and the record the session loaded, be
        freed as soon as the front end drops the session, rather than by the garbage
        collector later. Call it after :meth:`finish` (or when no finish is needed); the
        session itself keeps working.
        """
        if getattr(self, "session", None) is not None:  # not closed already
            del self.session

    # What the persistence strategies ask -----------------------------------------------

    def _key_of(self, session_id: str) -> str:
        """The store key of *session_id*, hashed once per request: at load, reused at save."""
        loaded: tuple[str, str] | None = getattr(self, "_loaded", None)
        if loaded is not None and loaded[0] is session_id:
            return loaded[1]
        return hash_id(session_id)

    # The end of the request ------------------------------------------------------------

    def finish(
        self,
        status: int,
        headers: Sequence[tuple[str, str]],
        *,
        failed: bool = False,
        error: BaseException | None = None,
    ) -> Outcome:
        """Save what the session says must be saved; return the headers to send.

        :param status: the response's status code; a 5xx saves nothing.
        :param headers: the response's headers as the application gave them.
        :param failed: True when the application failed (it raised, or passed ``exc_info``):
            nothing is saved.
        :param error: the exception the application raised, if any (implies *failed*); a
            :class:`StoreError` gives an unavailable outcome.

        Never raises StoreError: a store failure is logged once and becomes
        ``outcome.unavailable`` (``on_store_error="error"``) or an unsaved response.
        """
        out_headers: Headers = headers if isinstance(headers, list) else list(headers)
        core = self.core
        if error is not None:
            if isinstance(error, StoreError):
                self._log_store_error(error)
                return _unavailable(out_headers)
            failed = True
        session = self.session
        if not session.accessed:
            return _headers_only(out_headers)
        out_headers = _with_vary_cookie(out_headers)
        load_error = session.store_error
        if load_error is not None:
            return self._store_failed(load_error, out_headers)
        if failed or status >= 500:
            return _headers_only(out_headers)  # a failed request saves nothing
        plan = session.plan()
        if plan is None:
            return _headers_only(out_headers)
        https = self.https
        secure = https if core.cookie.secure is None else core.cookie.secure
        cookie_allowed = https or not secure
        persistence = core.persistence
        if not cookie_allowed and (
            plan.set_cookie
            or plan.new_data is not None
            or (persistence.client_side and plan.write_id is not None)
        ):
            logger.warning(
                "a session was not saved: cookie_secure=True but the request came over plain "
                "HTTP, so its cookie could not be sent (serve over HTTPS, or see "
                "trust_forwarded_proto when behind a TLS proxy)"
            )
            if plan.delete_id is None:
                return _headers_only(out_headers)
            plan = Plan(delete_id=plan.delete_id)
        elif plan.new_data is not None and not path_matches(self.path, core.cookie.path):
            core._warn_outside_path()
            if plan.delete_id is None:
                return _headers_only(out_headers)
            plan = Plan(delete_id=plan.delete_id)
        try:
            value = persistence.write(self, plan, cookie_allowed)
        except StoreError as exc:
            return self._store_failed(exc, out_headers)
        if value is None:
            return _headers_only(out_headers)
        cookie_value: str | None = None
        max_age: int | None = 0
        if value is _EXPIRE:
            set_cookie = core.cookie.build_expired(secure)
        else:
            assert isinstance(value, str)
            cookie_value, max_age = value, plan.cookie_max_age
            set_cookie = core.cookie.build_value(value, max_age, secure)
        out_headers = core._private(out_headers)
        out_headers.append(("Set-Cookie", set_cookie))
        outcome = Outcome(out_headers, [set_cookie])
        if cookie_value is None:
            outcome.cookie_expired = True
            outcome.cookie_max_age = 0
        else:
            outcome.cookie_value = cookie_value
            outcome.cookie_max_age = max_age
        return outcome

    def _store_failed(self, error: StoreError, headers: Headers) -> Outcome:
        """Log *error* and apply the outage policy: the 503, or the response unsaved."""
        self._log_store_error(error)
        if self.core.config.raise_store_errors:
            return _unavailable(headers)
        return _headers_only(headers)

    def _log_store_error(self, error: StoreError) -> None:
        """Log a store failure once per request, with no session id in it."""
        if getattr(self, "_logged", False):
            return
        self._logged = True
        logger.error(
            "session store failed (%s: %s); policy on_store_error=%r",
            type(error).__name__,
            error,
            self.core.config.on_store_error,
        )


class SessionCore:
    """What every request of one application shares: the store, the cookie, the settings.

    Validates every option once, at construction, and makes one :class:`Exchange` per
    request. The options are :class:`~wsgisession.middleware.SessionMiddleware`'s (but for
    ``app``, ``environ_key`` and ``trust_forwarded_proto``, which belong to WSGI).

    :param store: a :class:`Store` (server-side), a :class:`ClientSideStore` (the session in
        the cookie, e.g. ``CookieStore()``), or None for a per-process :class:`MemoryStore`.
    :param session_class: the class of the sessions handed out: :class:`Session` or a
        subclass (a framework's session, say), built as ``session_class(context, exchange)``.
    """

    def __init__(
        self,
        store: Store | ClientSideStore | None = None,
        session_class: type[Session] = Session,
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
        on_store_error: Literal["error", "continue"] = "error",
        clock: Callable[[], float] | None = None,
        retry_after: int = 5,
        describe: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None,
    ) -> None:
        if store is not None and not isinstance(store, (Store, ClientSideStore)):
            raise ConfigurationTypeError(
                f"store={store!r} is {a_type(store)}, not a wsgisession Store; pass "
                "MemoryStore(), SqliteStore(path), RedisStore(url), PostgresStore(dsn) or "
                "CookieStore() (or store_from_url(url) for a URL)"
            )
        if not (isinstance(session_class, type) and issubclass(session_class, Session)):
            raise ConfigurationTypeError(
                f"session_class={session_class!r} must be wsgisession.Session or a subclass"
            )
        if clock is not None and not callable(clock):
            raise ConfigurationTypeError(
                f"clock={clock!r} is {a_type(clock)}; give a callable returning seconds since "
                "the epoch (e.g. time.time), or None for time.time"
            )
        if describe is not None and not callable(describe):
            raise ConfigurationTypeError(
                f"describe={describe!r} must be a callable taking the request's WSGI variables "
                "(HTTP_USER_AGENT, REMOTE_ADDR, ...) and returning a dict of JSON values to keep "
                "with a user's session (e.g. lambda request: {'user_agent': "
                "request.get('HTTP_USER_AGENT', '')}), or None"
            )
        check_type("retry_after", retry_after, (int,), "a whole number of seconds (an int)")
        if retry_after < 0:
            raise ConfigurationError(
                f"retry_after={retry_after!r} must be 0 or more seconds (default 5)"
            )
        #: Where sessions live.
        self.store: Store | ClientSideStore = store if store is not None else MemoryStore()
        #: The session cookie's settings.
        self.cookie = CookieSettings(
            name=cookie_name,
            path=cookie_path,
            domain=cookie_domain,
            secure=cookie_secure,
            httponly=cookie_httponly,
            samesite=cookie_samesite,
            partitioned=cookie_partitioned,
            secret_keys=secret_keys,
        )
        #: Seconds since the epoch: the one clock every expiry is decided with.
        self.clock: Callable[[], float] = clock if clock is not None else _time_now
        #: The class of the sessions handed out.
        self.session_class = session_class
        # True when the class keeps Session's constructor, so an Exchange may inline it.
        self._plain_session = session_class.__init__ is Session.__init__
        #: The seconds of the 503's ``Retry-After``.
        self.retry_after = retry_after
        #: Describes the client (from the request's variables) when a session is bound to a
        #: user; the answer is kept as the session's ``info``. None keeps nothing.
        self.describe = describe
        #: How sessions persist: :class:`ServerSide` or :class:`ClientSide`.
        self.persistence: ServerSide | ClientSide
        tossing = _Throttled()
        max_size = max_session_size
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
            self.persistence = ClientSide(self.store, self.cookie, self.clock, tossing)
            # The effective size limit is what fits in the cookie: refused when a value is set,
            # not with a failed response when the cookie is built.
            budget = self.store.max_data_size(self.persistence.max_cookie_chars())
            if budget is not None and isinstance(max_size, int) and not isinstance(max_size, bool):
                max_size = min(max_size, budget)
            elif budget is not None and max_size is None:
                max_size = budget
        else:
            self.persistence = ServerSide(self.store, self.cookie, self.clock, tossing)
        #: The sessions' lifecycle settings.
        self.config = SessionConfig(
            max_age=max_age,
            touch_interval=max_age // 10
            if touch_interval is None and isinstance(max_age, int)
            else touch_interval,
            absolute_timeout=absolute_timeout,
            max_size=max_size,
            on_store_error=on_store_error,
        )
        # Each logged once per core: a misconfiguration repeats on every request.
        self._warned_cache_control = False
        self._warned_outside_path = False
        users = (
            ClientSideUsers(self.store)
            if isinstance(self.store, ClientSideStore)
            else StoreUsers(self.store, self.clock, self.config.max_age)
        )
        self._context = SessionContext(
            self.persistence.load,
            self.config,
            self.clock,
            new_id,
            self.store.serializer,
            users,
            _describe,
        )

    def begin(self, cookie_header: str | None, https: bool, path: str = "/") -> Exchange:
        """Start one request from its ``Cookie`` header; nothing is loaded until it is used.

        *path* is the request's URL path: a session started outside ``cookie_path`` is not
        saved, since the browser would never send its cookie back there.
        """
        return Exchange(self, cookie_header, https, path)

    def begin_value(self, cookie_value: str | None, https: bool, path: str = "/") -> Exchange:
        """Start one request from the session cookie's value, for a framework that parsed it."""
        return Exchange(self, [cookie_value] if cookie_value else None, https, path)

    def unavailable(self) -> tuple[int, Headers, bytes]:
        """The 503 a store failure is answered with: status, headers and a generic body."""
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(UNAVAILABLE_BODY))),
            ("Retry-After", str(self.retry_after)),
            ("Cache-Control", "no-store"),
        ]
        return 503, headers, UNAVAILABLE_BODY

    def _private(self, headers: Headers) -> Headers:
        """*headers* made private for a response that sets the session cookie.

        No Cache-Control gets ``private``. One a shared cache may act on (``public``,
        ``s-maxage``, or neither ``private`` nor ``no-store``) is rewritten, and that is
        logged once: a shared cache must never hand one visitor's session cookie to others.
        """
        given = [
            value
            for name, value in headers
            if len(name) == 13 and name.lower() == "cache-control"  # lower() only when it may be
        ]
        if not given:
            headers.append(("Cache-Control", "private"))
            return headers
        directives = [d.strip() for value in given for d in _DIRECTIVE_RE.findall(value)]
        directives = [d for d in directives if d]
        names = [d.split("=", 1)[0].strip().lower() for d in directives]
        shared = "public" in names or "s-maxage" in names
        if not shared and ("private" in names or "no-store" in names):
            return headers
        kept = [
            d
            for d, n in zip(directives, names, strict=True)
            if n not in ("public", "s-maxage", "private")
        ]
        rewritten = ", ".join(["private", *kept])
        if not self._warned_cache_control:
            self._warned_cache_control = True
            logger.warning(
                "a response that sets the session cookie said Cache-Control: %s, which lets a "
                "shared cache store it and hand the cookie to other visitors; it was sent as "
                "Cache-Control: %s (mark such responses private; logged once)",
                ", ".join(given),
                rewritten,
            )
        out = [(name, value) for name, value in headers if name.lower() != "cache-control"]
        out.append(("Cache-Control", rewritten))
        return out

    def _warn_outside_path(self) -> None:
        """Say once that sessions started outside cookie_path are not saved."""
        if self._warned_outside_path:
            return
        self._warned_outside_path = True
        logger.warning(
            "a session started on a request outside cookie_path=%r was not saved: the browser "
            "would never send its cookie back there, so every such request would leave an "
            "orphan record (start sessions under %r, or widen cookie_path; logged once)",
            self.cookie.path,
            self.cookie.path,
        )


def _describe(exchange: Exchange) -> Mapping[str, Any] | None:
    """The session's describe hook: the request's exchange describes its client."""
    return exchange.describe()


def _with_vary_cookie(headers: Headers) -> Headers:
    """Return a copy of *headers* with ``Cookie`` among the Vary values (the session was read)."""
    index = 0
    for name, value in headers:
        # Only a four-letter name can be Vary: most headers are passed over without lower().
        if len(name) == 4 and name.lower() == "vary":
            tokens = [token.strip().lower() for token in value.split(",")]
            headers = list(headers)
            if "cookie" not in tokens and "*" not in tokens:
                headers[index] = (name, f"{value}, Cookie")
            return headers
        index += 1  # noqa: SIM113 (enumerate costs a call and a tuple per header)
    return [*headers, ("Vary", "Cookie")]
