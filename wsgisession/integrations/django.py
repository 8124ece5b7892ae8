"""Django: a ``SESSION_ENGINE`` whose sessions are wsgisession sessions.

In ``settings.py``::

    SESSION_ENGINE = "wsgisession.integrations.django"
    WSGISESSION_STORE = "redis://127.0.0.1:6379/0"        # any store URL, or a Store
    WSGISESSION_OPTIONS = {"absolute_timeout": 8 * 3600}  # optional: the core's options
    MIDDLEWARE = [
        ...,
        "wsgisession.integrations.django.SessionPolicyMiddleware",  # outage → 503, caching
        "django.contrib.sessions.middleware.SessionMiddleware",  # Django's own, unchanged
        ...,
    ]

``request.session`` is then a :class:`SessionStore`, a real ``SessionBase`` that Django's
``SessionMiddleware``, ``django.contrib.auth``, the messages framework, the admin and the test
``Client`` use as they use Django's own engines, while the session underneath is the core's
:class:`~wsgisession.session.Session`: per-key merge of concurrent requests, ids hashed at rest,
unknown ids never adopted, throttled expiry refresh, and the outage policy.

Django's cookie carries exactly what the WSGI middleware's cookie carries (the id, or
``id.signature`` when signing keys are set), so a Django app and any other wsgisession front end
with the same store, cookie name and keys share one session.
"""

from __future__ import annotations

import contextvars
import inspect
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control
from django.utils.module_loading import import_string

from ..core import Exchange, SessionCore
from ..errors import (
    ConfigurationError,
    MissingDriverError,
    StoreError,
    StoreUnavailableError,
    a_type,
)
from ..policy import Plan, cookie_max_age, target_expiry
from ..session import Session
from ..stores import Store, store_from_url
from ..stores.base import ClientSideStore
from ._options import build_core

__all__ = ["SessionPolicyMiddleware", "SessionStore", "get_core"]

#: Core options that Django's own settings give; setting them in WSGISESSION_OPTIONS is an error.
_FROM_DJANGO: Final = {
    "cookie_name": "SESSION_COOKIE_NAME",
    "cookie_path": "SESSION_COOKIE_PATH",
    "cookie_domain": "SESSION_COOKIE_DOMAIN",
    "cookie_secure": "SESSION_COOKIE_SECURE",
    "cookie_httponly": "SESSION_COOKIE_HTTPONLY",
    "cookie_samesite": "SESSION_COOKIE_SAMESITE",
    "max_age": "SESSION_COOKIE_AGE",
}

#: The Django settings the engine is built from; changing one (override_settings) rebuilds it.
_SETTINGS: Final = frozenset(
    {
        "WSGISESSION_STORE",
        "WSGISESSION_OPTIONS",
        "SECRET_KEY",
        "SECRET_KEY_FALLBACKS",
        "SESSION_COOKIE_NAME",
        "SESSION_COOKIE_PATH",
        "SESSION_COOKIE_DOMAIN",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_SAMESITE",
        "SESSION_COOKIE_AGE",
    }
)


# The engine: one SessionCore per process, built from the settings on first use ---------------


class _DjangoSession(Session):
    """The core's session as a Django ``SessionStore`` holds it.

    The one difference: Django's ``save()`` and ``create()`` promise a stored session even when
    it holds nothing yet (the test ``Client`` and "give this visitor a session key" code rely on
    it), so an explicit save asks for the empty record too (:attr:`keep_empty`).
    """

    __slots__ = ("keep_empty",)

    def __init__(self, context: Any = None, source: Any = None) -> None:
        super().__init__(context, source)
        #: Set by an explicit Django save: store this session even if it holds no keys.
        self.keep_empty = False

    def plan(self) -> Plan | None:
        """The core's plan; for an explicitly saved empty new session, its creation."""
        plan = super().plan()
        if plan is not None or not self.keep_empty:
            return plan
        if self.store_error is not None or not self.is_new or len(self):
            return None
        self._writable()  # the id the new record is stored under
        session_id = self.id
        assert session_id is not None
        config = self._ctx.config
        now = self._ctx.clock()
        if self.created_at is None:  # fixes the creation moment, stored with the record
            return None
        meta = self._meta
        expires = target_expiry(meta, now, config.max_age, config.absolute_timeout)
        return Plan(
            write_id=session_id,
            new_data={},
            new_meta=meta,
            new_expires=expires,
            delete_id=self._replaces,
            set_cookie=True,
            cookie_max_age=cookie_max_age(meta, expires, now),
        )


class _Engine:
    """The core built from Django's settings, and whether this module built its store."""

    __slots__ = ("core", "owns_store")

    def __init__(self, core: SessionCore, owns_store: bool) -> None:
        self.core = core
        self.owns_store = owns_store


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def get_core() -> SessionCore:
    """The process's :class:`~wsgisession.core.SessionCore`, built from the settings once.

    Raises ImproperlyConfigured, saying which setting to change, when they cannot work.
    """
    engine = _engine
    if engine is None:
        engine = _build_engine()
    return engine.core


def _build_engine() -> _Engine:
    global _engine
    with _engine_lock:
        if _engine is None:
            options, sources = _options_from_settings()  # checked first: no store to close
            store, owns_store = _store_from_settings()
            try:
                core = build_core(store, _DjangoSession, options, sources)
            except ConfigurationError as exc:
                if owns_store:
                    store.close()
                raise ImproperlyConfigured(
                    f"wsgisession: {exc} (the cookie_* options are Django's SESSION_COOKIE_* "
                    "settings, max_age is SESSION_COOKIE_AGE, secret_keys are SECRET_KEY and "
                    "SECRET_KEY_FALLBACKS unless WSGISESSION_OPTIONS gives them, and the other "
                    "options come from WSGISESSION_OPTIONS)"
                ) from exc
            _engine = _Engine(core, owns_store)
        return _engine


def _store_from_settings() -> tuple[Store, bool]:
    """The store WSGISESSION_STORE names, and True when it was built here (from a URL)."""
    value = getattr(settings, "WSGISESSION_STORE", None)
    if value is None:
        raise ImproperlyConfigured(
            "WSGISESSION_STORE is not set: SESSION_ENGINE = 'wsgisession.integrations.django' "
            "needs a store, e.g. WSGISESSION_STORE = 'sqlite:///sessions.db' (or "
            "'redis://127.0.0.1:6379/0', 'postgresql://user@host/db', or a Store instance)"
        )
    if isinstance(value, ClientSideStore):
        raise ImproperlyConfigured(
            f"WSGISESSION_STORE is a {type(value).__name__}, which keeps the session in the "
            "cookie; the Django engine needs a server-side store (sqlite:///…, redis://…, "
            "postgresql://…). For sessions in the cookie use Django's "
            "'django.contrib.sessions.backends.signed_cookies' engine"
        )
    if isinstance(value, Store):
        return value, False
    if not isinstance(value, str):
        raise ImproperlyConfigured(
            f"WSGISESSION_STORE={value!r} is {a_type(value)}, neither a store URL nor a Store; "
            "use e.g. WSGISESSION_STORE = 'sqlite:///sessions.db' or "
            "RedisStore('redis://127.0.0.1:6379/0')"
        )
    try:
        return store_from_url(value), True
    except (ConfigurationError, MissingDriverError) as exc:
        raise ImproperlyConfigured(f"WSGISESSION_STORE: {exc}") from exc


def _options_from_settings() -> tuple[dict[str, Any], dict[str, str]]:
    """The core's keyword options: WSGISESSION_OPTIONS, with what Django's settings give.

    Returns the options and, for each, the setting it came from (for error messages).
    """
    given = getattr(settings, "WSGISESSION_OPTIONS", None)
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise ImproperlyConfigured(
            f"WSGISESSION_OPTIONS={given!r} is {a_type(given)}; it must be a dict of wsgisession "
            "options, e.g. WSGISESSION_OPTIONS = {'absolute_timeout': 28800}, or left out"
        )
    known = set(inspect.signature(SessionCore).parameters) - {"store", "session_class"}
    for name in given:
        if name in _FROM_DJANGO:
            raise ImproperlyConfigured(
                f"WSGISESSION_OPTIONS[{name!r}]: Django's own setting gives this one; set "
                f"{_FROM_DJANGO[name]} instead"
            )
        if name == "cookie_partitioned":
            raise ImproperlyConfigured(
                "WSGISESSION_OPTIONS['cookie_partitioned']: Django's SessionMiddleware writes "
                "the session cookie from the SESSION_COOKIE_* settings, and Django has no setting "
                "for the Partitioned attribute; remove the option (or serve the embedded part "
                "of the site through SessionMiddleware or the Flask or Pyramid integration, "
                "which take cookie_partitioned=True)"
            )
        if name.startswith("cookie_"):
            raise ImproperlyConfigured(
                f"WSGISESSION_OPTIONS[{name!r}]: Django's SessionMiddleware writes the session "
                "cookie, from the SESSION_COOKIE_* settings; set those instead"
            )
        if name not in known:
            raise ImproperlyConfigured(
                f"WSGISESSION_OPTIONS[{name!r}] is not a wsgisession option; remove it, or use "
                "one of "
                + ", ".join(
                    sorted(n for n in known - set(_FROM_DJANGO) if not n.startswith("cookie_"))
                )
            )
    options = dict(given)
    if isinstance(options.get("describe"), str):
        try:
            options["describe"] = import_string(options["describe"])
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"WSGISESSION_OPTIONS['describe'] = {given['describe']!r} names nothing "
                f"importable ({exc}); give a function of request.META, or its dotted path such "
                "as 'myapp.sessions.describe'"
            ) from exc
    sources = {name: f"WSGISESSION_OPTIONS[{name!r}]" for name in given}
    sources.update((option, setting) for option, setting in _FROM_DJANGO.items())
    if "secret_keys" not in options:
        sources["secret_keys"] = "SECRET_KEY"
        # Signed cookies by default, with Django's keys (newest first, as Django orders them):
        # a forged cookie then never costs a store query. Other front ends that share these
        # sessions need the same keys; WSGISESSION_OPTIONS["secret_keys"] = None signs nothing.
        options["secret_keys"] = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    # Django's SessionMiddleware writes the cookie; the core is told what it will be, so that
    # its checks (a __Host- name needs Secure, SameSite=None needs Secure) judge the real one.
    options["cookie_name"] = settings.SESSION_COOKIE_NAME
    options["cookie_path"] = settings.SESSION_COOKIE_PATH
    options["cookie_domain"] = settings.SESSION_COOKIE_DOMAIN
    options["cookie_secure"] = bool(settings.SESSION_COOKIE_SECURE)
    options["cookie_httponly"] = bool(settings.SESSION_COOKIE_HTTPONLY)
    options["cookie_samesite"] = settings.SESSION_COOKIE_SAMESITE or None
    options["max_age"] = settings.SESSION_COOKIE_AGE
    return options, sources


def _reset_engine(*, setting: str, **kwargs: Any) -> None:
    """Rebuild the engine when a setting it was built from changes (override_settings)."""
    global _engine
    if setting not in _SETTINGS:
        return
    with _engine_lock:
        engine, _engine = _engine, None
    if engine is not None and engine.owns_store:
        engine.core.store.close()


setting_changed.connect(_reset_engine, dispatch_uid="wsgisession.integrations.django")


# Who answers a store outage ------------------------------------------------------------------

#: True while SessionPolicyMiddleware handles the request: a failed save is then turned into a 503
#: instead of being raised into Django (which would answer 500).
_outage_handled: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "wsgisession_outage_handled", default=False
)


# The SessionStore ----------------------------------------------------------------------------


class SessionStore(SessionBase):  # type: ignore[misc]  # Django ships no type information
    """Django's ``request.session``, kept by the wsgisession core.

    ``session_key`` is the session cookie's value (the id, or ``id.signature`` with signing
    keys); Django's ``SessionMiddleware`` sets it as the cookie, as with any engine. Reading
    and writing keys is deferred and merged as the core does it: a request's changes are
    applied to the stored session, never a whole-session overwrite. Django's explicit calls
    (``save()``, ``cycle_key()``, ``flush()``, ``delete()``, ``create()``) reach the store when
    they are made, as with Django's own engines.

    A key that is not one the server issued (unknown, expired, forged, badly signed) gives an
    empty new session with ``session_key`` None, and no store record is ever made under it.
    """

    #: The session cookie's value (SessionBase's property: checked to be 8+ characters).
    _session_key: str | None

    def __init__(self, session_key: str | None = None) -> None:
        self._core = get_core()
        self._exchange: Exchange | None = None
        #: True once this object saw its session stored: a save that then finds it gone
        #: raises UpdateError (a concurrent logout), never recreating it under a new key.
        self._expect_live = False
        #: True once this request's session met a store failure (loading or saving).
        self._store_failed = False
        #: Set by set_expiry() with a moment already past: the save ends the session.
        self._expire_now = False
        self._modified = False
        super().__init__(session_key)

    # Django's flag, plus the core's view: an existing session whose expiry refresh is due, or
    # whose nested values changed in place, must be saved too, and its cookie sent again.

    @property
    def modified(self) -> bool:
        """True when the end of the request must save the session (Django's flag or the core's)."""
        if self._modified:
            return True
        exchange = self._exchange
        if exchange is None or not exchange.session.accessed:
            return False
        session = exchange.session
        return not session.is_new and session.plan() is not None

    @modified.setter
    def modified(self, value: bool) -> None:
        self._modified = value

    # The session underneath -----------------------------------------------------------------

    def _begin(self, cookie_value: str | None) -> Exchange:
        # Django builds the cookie (from SESSION_COOKIE_SECURE and SESSION_COOKIE_PATH), not the
        # core, and a SessionBase never sees the request: so the core is told the request is
        # HTTPS and within the cookie's path, and never holds a save back for either.
        core = self._core
        return core.begin_value(cookie_value, True, core.cookie.path)

    def _install(self, exchange: Exchange) -> _DjangoSession:
        self._exchange = exchange
        session: _DjangoSession = exchange.session  # type: ignore[assignment]
        self._session_cache = session
        return session

    def _get_session(self, no_load: bool = False) -> Any:
        """The session, loaded lazily on first use: one store call for a valid key, else none."""
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            if no_load or self.session_key is None:
                return self._install(self._begin(None))
            session = self._install(self._begin(self.session_key))
            self._check_loaded(session)
            if session.id is not None:
                self._expect_live = True
            return session

    _session = property(_get_session)

    async def _aget_session(self, no_load: bool = False) -> Any:
        if no_load or "_session_cache" in self.__dict__ or self.session_key is None:
            return self._get_session(no_load)
        return await sync_to_async(self._get_session)(no_load)

    def load(self) -> Any:
        """Read the session from the store and return it (a mapping of its keys), as stored now.

        A key the store does not know resets ``session_key`` to None: it is never adopted. The
        session this object works on is left as it is, as with Django's engines.
        """
        session = self._begin(self.session_key).session
        self._check_loaded(session)
        if session.id is None:
            self._expect_live = False
        return session

    def _check_loaded(self, session: Session) -> None:
        """Load *session*; forget the key when it names no live session (never adopt it)."""
        if session.id is None and session.store_error is None:
            self._session_key = None

    def clear(self) -> None:
        """Remove every key; the session itself lives on (see flush() to end it)."""
        self._session.clear()
        self.accessed = True
        self.modified = True

    def is_empty(self) -> bool:
        """True when there is no session key and the session holds nothing."""
        if self.session_key:
            return False
        session = self.__dict__.get("_session_cache")
        return session is None or not session.accessed or not len(session)

    # What Django asks of an engine ---------------------------------------------------------------

    def exists(self, session_key: str | None) -> bool:
        """Tell whether the store holds a live session under *session_key* (a cookie value)."""
        if not session_key:
            return False
        return self._begin(session_key).session.id is not None

    def create(self) -> None:
        """Start a new, empty session and store it at once (so it has a key), as Django does."""
        self._install(self._begin(None))
        self._expect_live = False
        self._session_key = None
        self.save(must_create=True)
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        """Write what changed to the store now; give the session its key if it is new.

        ``must_create`` asks for a new session (CreateError when this one already exists).
        Raises UpdateError when the session was deleted meanwhile (another request logged it
        out): it is never recreated.
        """
        exchange = self._exchange
        if exchange is None:
            if self.session_key is not None:
                return  # never read nor changed here: nothing to write
            session = self._install(self._begin(None))
        else:
            session = exchange.session  # type: ignore[assignment]
        if self._expire_now:
            self._expire_now = False
            session.destroy()
        elif session.store_error is None:
            if must_create and not session.is_new:
                raise CreateError("the session already exists; must_create=True wants a new one")
            if session.is_new and self._expect_live and not must_create:
                raise UpdateError("the session was deleted before this save")
            session.keep_empty = True
        self._finish()

    def _finish(self) -> None:
        """Carry out the current session's plan on the store; go on with a fresh exchange."""
        exchange = self._exchange
        assert exchange is not None
        outcome = exchange.finish(200, [])
        if exchange.session.store_error is not None:
            self._store_failed = True
        if outcome.unavailable:
            self._store_failed = True
            if not _outage_handled.get():
                raise StoreUnavailableError(
                    "the session store failed while saving (on_store_error='error'); add "
                    "'wsgisession.integrations.django.SessionPolicyMiddleware' before Django's "
                    "SessionMiddleware to answer it with a 503"
                )
            return
        if outcome.cookie_value is not None:
            self._session_key = outcome.cookie_value
            self._expect_live = True
        elif outcome.cookie_expired:
            self._session_key = None
            self._expect_live = False
        # What follows in this request starts from the store's copy (loaded again if used).
        del self._session_cache
        self._exchange = None
        exchange.close()

    def delete(self, session_key: str | None = None) -> None:
        """Delete the stored session under *session_key* (the current one by default) now."""
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        exchange = self._begin(session_key)
        exchange.session.destroy()
        outcome = exchange.finish(200, [])
        if outcome.unavailable:
            self._store_failed = True
            if not _outage_handled.get():
                raise StoreUnavailableError(
                    "the session store failed while deleting a session (on_store_error='error')"
                )

    def flush(self) -> None:
        """End the session now: its record is deleted and a new, empty one begins (logout)."""
        session = self._session
        session.destroy()
        self._finish()
        self._session_key = None
        self._expect_live = False
        self._install(self._begin(None))
        self.accessed = True
        self.modified = True

    def cycle_key(self) -> None:
        """Move the session to a new key now, keeping its data, and delete the old record.

        ``django.contrib.auth.login()`` calls it; the new record and the deletion of the old
        one are one store call.
        """
        session = self._session
        had_data = bool(len(session))
        session.regenerate()
        if not had_data and session.is_new and self.session_key is None:
            return  # nothing stored, nothing to move: the session gets its key when saved
        session.keep_empty = True
        self._expect_live = False
        self._finish()
        self.modified = True

    @classmethod
    def clear_expired(cls) -> None:
        """Delete every expired session from the store (``manage.py clearsessions``)."""
        core = get_core()
        store = core.store
        assert isinstance(store, Store)
        store.purge(core.clock())

    # Expiry: Django's choice, kept in the session as Django keeps it, enforced by the core ---

    def set_expiry(self, value: Any) -> None:
        """Django's ``set_expiry``, enforced on the server by the core.

        Seconds of idleness (an int), 0 for a cookie that ends with the browser, a ``datetime``
        or ``timedelta`` for a fixed moment, or None for the default (SESSION_COOKIE_AGE). The
        choice is kept under Django's ``_session_expiry`` key, so the expiry getters answer as
        Django's do; a moment already past ends the session when it is saved.
        """
        super().set_expiry(value)
        session = self._session
        self._expire_now = False
        expiry = session.get("_session_expiry")
        if expiry is None:
            session.set_expiry(self.get_session_cookie_age())
        elif isinstance(expiry, str):
            moment = datetime.fromisoformat(expiry)
            if moment.tzinfo is None:
                moment = moment.astimezone()  # Django's naive datetimes are local time
            if moment.timestamp() <= self._core.clock():  # the core's clock decides expiry
                self._expire_now = True
            else:
                session.set_expiry(moment)
        elif expiry == 0:
            session.set_expiry(None)  # the cookie ends with the browser; the idle timeout stays
        elif expiry < 0:
            self._expire_now = True
        else:
            session.set_expiry(int(expiry))

    # Async twins (Django 5): the same work in a thread, as Django's own engines do it ---------

    async def aload(self) -> Any:
        return await sync_to_async(self.load)()

    async def aexists(self, session_key: str | None) -> bool:
        return await sync_to_async(self.exists)(session_key)

    async def acreate(self) -> None:
        await sync_to_async(self.create)()

    async def asave(self, must_create: bool = False) -> None:
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key: str | None = None) -> None:
        await sync_to_async(self.delete)(session_key)

    async def aflush(self) -> None:
        await sync_to_async(self.flush)()

    async def acycle_key(self) -> None:
        await sync_to_async(self.cycle_key)()

    async def aset_expiry(self, value: Any) -> None:
        await sync_to_async(self.set_expiry)(value)

    @classmethod
    async def aclear_expired(cls) -> None:
        await sync_to_async(cls.clear_expired)()

    # Users ------------------------------------------------------------------------------------

    def bind_user(self, user_id: Any, client: Mapping[str, Any] | None = None) -> None:
        """Bind the session to *user_id* (``str(user.pk)``), or unbind it with None.

        Called at every login (``user_logged_in``, after ``login()`` cycled the key) and
        logout (``user_logged_out``, before ``logout()`` flushes the session): a bound session
        is listed by ``session.user_sessions()`` and ended by ``wsgisession.revoke_user()``.
        *client* is the request's ``META``, for the ``describe`` option.
        """
        session = self._session
        if client is not None and self._exchange is not None:
            self._exchange.client = client
        session.set_user(None if user_id is None else str(user_id))
        self.modified = True

    # For the policy middleware ---------------------------------------------------------------

    @property
    def store_failed(self) -> bool:
        """True when this request's session met a store failure (loading or saving)."""
        if self._store_failed:
            return True
        exchange = self._exchange
        return exchange is not None and exchange.session.store_error is not None


def _logged_in(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """django.contrib.auth's user_logged_in: bind the session to the user (bind_user)."""
    session = getattr(request, "session", None)
    if isinstance(session, SessionStore):
        session.bind_user(user.pk, request.META)


def _logged_out(sender: Any, request: HttpRequest, user: Any = None, **kwargs: Any) -> None:
    """django.contrib.auth's user_logged_out: the session is bound to no one any more."""
    session = getattr(request, "session", None)
    if isinstance(session, SessionStore) and session.session_key is not None:
        session.bind_user(None)


user_logged_in.connect(_logged_in, dispatch_uid="wsgisession.integrations.django.bind_user")
user_logged_out.connect(_logged_out, dispatch_uid="wsgisession.integrations.django.unbind_user")


# The policy middleware -----------------------------------------------------------------------


class SessionPolicyMiddleware:
    """What Django's SessionMiddleware leaves to wsgisession: the outage policy and caching.

    Put it right before ``django.contrib.sessions.middleware.SessionMiddleware``, which stays.

    * A store outage under ``on_store_error="error"`` (loading the session in a view or another
      middleware, or saving it) is answered with the core's 503 and ``Retry-After``, with no
      session cookie; without this middleware the outage still stops the request, as a 500.
      Under ``"continue"`` it drops the session cookie Django would send for a session that
      could not be saved, so the browser keeps the cookie it has.
    * A response that sets the session cookie and says nothing of caching gets
      ``Cache-Control: private``, so no shared cache keeps one visitor's cookie for another
      (Django's middleware adds ``Vary: Cookie`` only).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        get_core()  # Django builds its middleware at start: a bad setting fails then

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _outage_handled.set(True)
        try:
            response = self.get_response(request)
        finally:
            _outage_handled.reset(token)
        session = getattr(request, "session", None)
        if isinstance(session, SessionStore) and session.store_failed:
            if session._core.config.raise_store_errors:
                return self._unavailable(session._core)
            response.cookies.pop(settings.SESSION_COOKIE_NAME, None)
        if settings.SESSION_COOKIE_NAME in response.cookies and not response.has_header(
            "Cache-Control"
        ):
            patch_cache_control(response, private=True)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A store failure raised in a view: the 503, without Django's 500 machinery."""
        if isinstance(exception, StoreError):
            return self._unavailable(get_core())
        return None

    @staticmethod
    def _unavailable(core: SessionCore) -> HttpResponse:
        status, headers, body = core.unavailable()
        response = HttpResponse(body, status=status)
        for name, value in headers:
            response[name] = value
        return response
