"""Session: the dict-like object a view finds in ``environ["wsgisession"]``.

It loads lazily (the first access asks the store, through a loader the middleware gives it),
records which keys were set and which removed, notices changes inside nested values, and owns
the lifecycle: expiry, throttled refresh, ``regenerate()``, ``destroy()`` and flash messages.
It knows nothing of WSGI, cookies or stores: :meth:`Session.plan` says what must be written
(a :class:`~wsgisession.policy.Plan`), and the core (:mod:`wsgisession.core`) does it.
"""

from __future__ import annotations

import hmac
import math
import operator
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from json.encoder import encode_basestring
from typing import Any, Final, Literal, Protocol

from .errors import (
    ConfigurationError,
    ConfigurationTypeError,
    NoUserIndexError,
    SerializationError,
    SessionError,
    SessionTooLargeError,
    StoreError,
    a_type,
    check_type,
)
from .policy import (
    BROWSER,
    CREATED,
    ENDS,
    LIFETIME,
    OLD_META_NAMES,
    Plan,
    cookie_max_age,
    past_deadline,
    read_meta,
    refresh_due,
    target_expiry,
)
from .records import INFO, MAX_INT_DIGITS, USER, Changes, Record, check_user_id, user_of
from .serializers import JSONSerializer, Serializer, utf8_size

__all__ = ["Session", "SessionConfig", "SessionContext", "SessionInfo", "UserIndex"]

#: A loader takes the request's source (for the core, its per-request Exchange) and returns
#: the session id with its stored record, or None when there is no live session. It may raise
#: StoreError.
Loader = Callable[[Any], "tuple[str, Record] | None"]

_FLASH_PREFIX: Final = "_flash:"
_CSRF_KEY: Final = "_csrf_token"


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """The lifecycle settings shared by every session of one middleware."""

    #: Idle timeout in seconds: a session unused this long is dead.
    max_age: int = 1209600
    #: The refreshed expiry is written at most once per this many seconds.
    touch_interval: int = 120960
    #: Seconds after creation when a session ends however active it is; None for never.
    absolute_timeout: int | None = None
    #: The largest session, in bytes of serialized data; None for no limit.
    max_size: int | None = 65536
    #: ``"error"``: a store failure is raised into the application (and answered with a 503);
    #: ``"continue"``: the request carries on with an empty session that is not saved.
    on_store_error: Literal["error", "continue"] = "error"

    def __post_init__(self) -> None:
        seconds = "a whole number of seconds (an int)"
        check_type(
            "max_age", self.max_age, (int,), f"{seconds}, e.g. max_age=3600 (default 14 days)"
        )
        if self.max_age <= 0:
            raise ConfigurationError(
                f"max_age={self.max_age!r} must be a positive number of seconds (default 1209600)"
            )
        check_type(
            "touch_interval", self.touch_interval, (int,), f"{seconds}, or None for max_age // 10"
        )
        if self.touch_interval < 0:
            raise ConfigurationError(
                f"touch_interval={self.touch_interval!r} must be 0 or more seconds "
                "(default max_age // 10)"
            )
        if self.touch_interval > self.max_age:
            raise ConfigurationError(
                f"touch_interval={self.touch_interval!r} is longer than max_age={self.max_age!r}: "
                "a session used only by reads would expire before its refresh is ever written; "
                f"set touch_interval to at most max_age (e.g. {self.max_age // 10}, the default "
                "max_age // 10), or leave it out"
            )
        check_type(
            "absolute_timeout", self.absolute_timeout, (int, type(None)), f"{seconds}, or None"
        )
        if self.absolute_timeout is not None and self.absolute_timeout <= 0:
            raise ConfigurationError(
                f"absolute_timeout={self.absolute_timeout!r} must be a positive number of seconds "
                "or None"
            )
        check_type(
            "max_session_size",
            self.max_size,
            (int, type(None)),
            "a whole number of bytes (an int), or None for no limit",
        )
        if self.max_size is not None and self.max_size <= 0:
            raise ConfigurationError(
                f"max_session_size={self.max_size!r} must be a positive number of bytes or None"
            )
        check_type("on_store_error", self.on_store_error, (str,), "'error' or 'continue'")
        if self.on_store_error not in ("error", "continue"):
            raise ConfigurationError(
                f"on_store_error={self.on_store_error!r} is unknown; use 'error' (a 503) or "
                "'continue' (an empty session that is not saved)"
            )

    @property
    def raise_store_errors(self) -> bool:
        """True when a store failure is raised into the application (``on_store_error='error'``)."""
        return self.on_store_error == "error"


def _time_now() -> float:
    # Looked up at call time, so a test that patches time.time moves this clock too.
    return time.time()


def _new_id() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session of a user, as ``session.user_sessions()`` lists it.

    Times are aware datetimes in UTC. ``last_seen`` is derived from the stored expiry (the
    expiry less the session's idle timeout), which is refreshed at most once per
    ``touch_interval``: it is accurate to that interval (the current session says now).
    """

    #: Names this session in the list, e.g. for a "log out that device" button. Opaque and
    #: not a credential: it cannot be used as a cookie and leads back to no session id.
    handle: str
    #: When the session started (kept across ``regenerate()``).
    created: datetime
    #: When the session was last used, to within ``touch_interval``.
    last_seen: datetime
    #: When the session ends unless it is used again.
    expires: datetime
    #: True for the session of the request that asks.
    current: bool
    #: The client's description (the middleware's ``describe`` hook); empty when not asked for.
    info: dict[str, Any]


class UserIndex(Protocol):
    """What the core lends a session to list and end its user's sessions.

    The session speaks in session ids; the core turns them into store keys and handles.
    """

    def handle_of(self, session_id: str) -> str:
        """The handle of the session *session_id*."""
        ...

    def sessions(self, user_id: str, current_id: str | None) -> list[SessionInfo]:
        """The live sessions of *user_id*, with *current_id*'s marked current."""
        ...

    def revoke_others(self, user_id: str, keep_id: str | None) -> int:
        """End every session of *user_id* but *keep_id*'s; return how many ended."""
        ...

    def revoke(self, user_id: str, handle: str) -> bool:
        """End the session of *user_id* with *handle*; return whether there was one."""
        ...


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What every session of one core shares: made once, passed to each ``Session``.

    The defaults give a detached session (no store behind it), for tests and tools.
    """

    #: Gets the session id and record from the request's source, or None (see Loader).
    loader: Loader | None = None
    config: SessionConfig = field(default_factory=SessionConfig)
    #: Seconds since the epoch.
    clock: Callable[[], float] = _time_now
    #: Makes a fresh session id.
    new_id: Callable[[], str] = _new_id
    serializer: Serializer = field(default_factory=JSONSerializer)
    #: Lists and ends the sessions of a user; None when there is no store behind the session.
    users: UserIndex | None = None
    #: Describes the client from the request's source when a session is bound to a user
    #: (stored as ``info``); None, or a callable returning None, stores nothing.
    describe: Callable[[Any], Mapping[str, Any] | None] | None = None


class Session(MutableMapping[str, Any]):
    """A dict-like session that loads on first access and tracks exactly what changed.

    Views get one from the middleware (or a framework integration); they never build it.
    Reading any key, ``in``, ``len`` or iteration loads the session (and marks the response
    ``Vary: Cookie``). Values must be JSON types; a value that is not raises
    :class:`~wsgisession.errors.SerializationError` (a ``TypeError``) naming the key, and the
    session is left as it was.

    :param context: what the sessions of one core share (loader, settings, clock, ids);
        the default context gives a detached session with no store behind it.
    :param source: what the context's loader reads the session from (the core passes its
        per-request exchange); None loads nothing.
    """

    __slots__ = (
        "_ctx",
        "_source",
        "_loaded",
        "_data",
        "_record",
        "_id",
        "_origin",
        "_fresh",
        "_needs_create",
        "_replaces",
        "_updates",
        "_removals",
        "_increments",
        "_snapshots",
        "_originals",
        "_meta",
        "_meta_dirty",
        "_size",
        "_error",
    )

    def __init__(self, context: SessionContext | None = None, source: Any = None) -> None:
        # wsgisession.core.Exchange does what this does without the call: keep them in step.
        self._ctx: SessionContext = context if context is not None else _DETACHED
        self._source = source
        self._loaded = False

    # Loading ------------------------------------------------------------------------------

    def _load(self) -> None:
        """Fill the session from the store, once; a missing or dead record gives an empty one."""
        self._loaded = True
        self._error: StoreError | None = None
        self._data: dict[str, Any] = {}
        self._record: Record | None = None
        self._id: str | None = None
        self._origin: str | None = None
        self._fresh = True
        self._needs_create = True
        self._replaces: str | None = None
        self._updates: set[str] = set()
        self._removals: set[str] = set()
        self._increments: dict[str, int | float] = {}
        self._snapshots: dict[str, str] = {}
        self._originals: dict[str, Any] = {}
        self._meta: dict[str, Any] = {}
        self._meta_dirty = False
        self._size = 0
        if self._ctx.loader is None or self._source is None:
            return
        try:
            found = self._ctx.loader(self._source)
        except StoreError as exc:
            self._error = exc
            if self._ctx.config.raise_store_errors:
                raise
            return
        if found is None:
            return
        session_id, record = found
        meta = record.meta
        if not _OLD_META_KEYS.isdisjoint(meta):  # a 0.1.0 record: its names read as today's
            meta = record.meta = read_meta(meta)
        limit = self._ctx.config.absolute_timeout
        if limit is not None and past_deadline(meta, self._ctx.clock(), limit):
            self._replaces = session_id  # dead by absolute_timeout: delete it at the end
            return
        self._data = record.data
        # The size estimate starts from what the store measured; a store that could not say
        # (0) leaves it unknown, and just past the limit makes the first write measure it.
        size = record.size
        if size <= 0 and record.data:
            size = (self._ctx.config.max_size or 0) + 1
        self._size = size
        self._record = record
        self._meta = meta
        self._id = self._origin = session_id
        self._fresh = False
        self._needs_create = False

    def _ensure(self) -> None:
        if not self._loaded:
            self._load()

    def _writable(self) -> None:
        """Load, then make sure the session has an id, because it is about to hold data."""
        if not self._loaded:
            self._load()
        if self._id is None:
            self._id = self._ctx.new_id()

    # Properties ----------------------------------------------------------------------------

    #: True once anything read or wrote the session (the response then varies by cookie).
    #: A C-level getter: the core asks on every request, touched or not.
    accessed = property(operator.attrgetter("_loaded"))

    @property
    def store_error(self) -> StoreError | None:
        """The store failure met while loading, if any; such a session is never saved."""
        return self._error if self._loaded else None

    @property
    def id(self) -> str | None:
        """The session id, or None while the session has no data and so does not exist yet."""
        self._ensure()
        return self._id

    @property
    def is_new(self) -> bool:
        """True when this request started the session (no live session came with it)."""
        self._ensure()
        return self._fresh

    @property
    def created_at(self) -> datetime | None:
        """When the session was created, as an aware UTC datetime; None while it has no id.

        A session started by this request is created now (the moment is fixed on the first
        ask and stored with it). :meth:`regenerate` keeps it, as it keeps the absolute
        deadline; a session begun after :meth:`destroy` gets a new one.
        """
        self._ensure()
        if self._id is None:
            return None
        created: Any = self._meta.get(CREATED)
        if not _is_number(created):
            created = self._ctx.clock()
            self._meta = {**self._meta, CREATED: created}  # stored with the new record
        return datetime.fromtimestamp(float(created), timezone.utc)

    @property
    def expires_at(self) -> datetime | None:
        """When the server ends the session if no further request uses it; None while it has no id.

        An aware UTC datetime: the idle timeout from the last write of the expiry (throttled by
        ``touch_interval``, so it may lag the last request by up to that long), or the fixed end
        of ``set_expiry(datetime)``, and never past the ``absolute_timeout`` deadline. For a
        browser-session cookie (``set_expiry(None)``) it is the same server-side end; the
        browser may drop the cookie sooner, when it closes.
        """
        self._ensure()
        if self._id is None:
            return None
        config = self._ctx.config
        now = self._ctx.clock()
        meta = self._meta
        if not _is_number(meta.get(CREATED)):
            meta = {**meta, CREATED: now}
        target = target_expiry(meta, now, config.max_age, config.absolute_timeout)
        record = self._record
        if (
            record is not None
            and not self._needs_create
            and not self._meta_dirty
            and not refresh_due(target, record.expires, config.touch_interval)
        ):
            target = record.expires  # this request's refresh is not due: the stored end holds
        return datetime.fromtimestamp(target, timezone.utc)

    # Mapping -------------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        if not self._loaded:
            self._load()
        value = self._data[key]
        if type(value) in _MUTABLE and key not in self._snapshots and key not in self._updates:
            # Remember how it looked, so an in-place change (cart.append(x)) is noticed at save.
            self._snapshots[key] = self._ctx.serializer.dumps(value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value under *key*, or *default*."""
        if not self._loaded:
            self._load()
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return default
        if type(value) in _MUTABLE and key not in self._snapshots and key not in self._updates:
            self._snapshots[key] = self._ctx.serializer.dumps(value)
        return value

    def __setitem__(self, key: str, value: Any) -> None:
        plain_key = isinstance(key, str) and key.isascii()
        if not plain_key:
            _check_key(key, value)
        text: str | None = None
        try:
            if value is None or value.__class__ in _ATOMS:
                size = len(repr(value))  # as long as its JSON (null, true, 42)
            else:
                text = self._ctx.serializer.dumps(value)
                size = utf8_size(text)
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerializationError(key, value, _reason(exc)) from exc
        if not self._loaded:
            self._load()
        if self._id is None:
            self._id = self._ctx.new_id()  # about to hold data, so the session needs an id
        limit = self._ctx.config.max_size
        if limit is not None:
            # A running estimate in bytes, never below the exact size (the stored size plus
            # each pair this request set) keeps the common case free; only past the limit is
            # the whole session measured, exactly.
            # An ASCII key's JSON is ASCII too: its length is its size, plus a colon and a comma.
            added = size + (len(encode_basestring(key)) + 2 if plain_key else _key_size(key))
            self._size += added
            if self._size > limit:
                self._measure(key, value, added, limit)
        if not self._needs_create and key not in self._originals:
            old = self._data.get(key, _MISSING)
            if old is _MISSING or old is None or old.__class__ in _IMMUTABLE:
                self._originals[key] = old  # the common case of _remember, inline
            else:
                self._remember(key)
        self._data[key] = value
        self._updates.add(key)
        self._removals.discard(key)
        self._increments.pop(key, None)
        if text is None:
            self._snapshots.pop(key, None)
        else:
            # How it looked when set: a later in-place change is measured at plan time.
            self._snapshots[key] = text

    def _measure(self, key: str, value: Any, added: int, limit: int) -> None:
        """Measure the session with *value* set exactly; refuse it past *limit*, unchanged."""
        trial = dict(self._data)
        trial[key] = value
        exact = self._exact_size(trial)
        if exact > limit:
            self._size -= added
            raise SessionTooLargeError(exact, limit, f"the session with session[{key!r}] set")
        self._size = exact

    def _exact_size(self, data: dict[str, Any] | None = None) -> int:
        """The size of *data* (the session's, by default) as serialized, in UTF-8 bytes."""
        data = self._data if data is None else data
        try:
            return utf8_size(self._ctx.serializer.dumps(data))
        except (TypeError, ValueError, RecursionError) as exc:
            # Every value was checked when set; only one changed in place since can fail.
            for name, value in data.items():
                try:
                    self._ctx.serializer.dumps(value)
                except (TypeError, ValueError, RecursionError) as inner:
                    raise SerializationError(name, value, _reason(inner)) from inner
            raise SerializationError("?", data, _reason(exc)) from exc

    def _remember(self, key: str) -> None:
        """Keep how *key* was as loaded, before this request first changes it.

        At plan time a key that ends as it was loaded is not written (set, then set back).
        Immutable values are kept as they are; others as their serialized text.
        """
        value = self._data.get(key, _MISSING)
        if value is _MISSING or value is None or value.__class__ in _IMMUTABLE:
            self._originals[key] = value
        elif key in self._snapshots and key not in self._updates:
            self._originals[key] = _Text(self._snapshots[key])  # as read in this request
        else:
            try:
                self._originals[key] = _Text(self._ctx.serializer.dumps(value))
            except (TypeError, ValueError, RecursionError):
                self._originals[key] = _UNKNOWN  # changed in place into something unwritable

    def set(self, key: str, value: Any) -> None:
        """Set *key* to *value* (the same as ``session[key] = value``)."""
        self[key] = value

    def __delitem__(self, key: str) -> None:
        if not self._loaded:
            self._load()
        if key in self._data and not self._needs_create and key not in self._originals:
            self._remember(key)
        del self._data[key]
        self._updates.discard(key)
        self._increments.pop(key, None)
        self._snapshots.pop(key, None)
        if not self._needs_create:
            self._removals.add(key)

    def __contains__(self, key: object) -> bool:
        if not self._loaded:
            self._load()
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        if not self._loaded:
            self._load()
        return iter(list(self._data))

    def __len__(self) -> int:
        if not self._loaded:
            self._load()
        return len(self._data)

    def clear(self) -> None:
        """Remove every key (the session itself lives on; see :meth:`destroy` to end it)."""
        if not self._loaded:
            self._load()
        if not self._needs_create:
            for key in self._data:
                if key not in self._originals:
                    self._remember(key)
            self._removals.update(self._data)
        self._data.clear()
        self._updates.clear()
        self._increments.clear()
        self._snapshots.clear()

    def increment(self, key: str, by: int | float = 1) -> int | float:
        """Add *by* to the number under *key* (0 when missing) and return the new value.

        Unlike ``session[key] += by``, concurrent increments of one key by overlapping
        requests all count: the store adds the amounts, it does not overwrite the value.
        """
        if not isinstance(key, str) or not key.isascii():
            _check_key(key, by)
        if not isinstance(by, (int, float)) or isinstance(by, bool):
            raise SerializationError(key, by, "increment() takes an int or a float")
        current = self.get(key, 0)
        if not isinstance(current, (int, float)) or isinstance(current, bool):
            current = 0
        try:
            value: int | float = current + by
            size = utf8_size(self._ctx.serializer.dumps(value))
        except (TypeError, ValueError, OverflowError) as exc:
            raise SerializationError(key, current, _reason(exc)) from exc
        self._writable()
        limit = self._ctx.config.max_size
        if limit is not None:
            added = size + _key_size(key)
            self._size += added
            if self._size > limit:
                self._measure(key, value, added, limit)
        if not self._needs_create and key not in self._originals:
            self._remember(key)
        self._data[key] = value
        self._snapshots.pop(key, None)
        if self._needs_create or key in self._updates or key in self._removals:
            # A new record, or a key set or removed here: the value is exact.
            self._removals.discard(key)
            self._updates.add(key)
        else:
            self._increments[key] = self._increments.get(key, 0) + by
        return value

    def changed(self, key: str | None = None) -> None:
        """Say that the value under *key* (every value read, when None) was changed in place.

        Not needed for the change to be saved: the end of the request finds it. It checks the
        change now, where the view can handle a failure: a value the serializer cannot hold
        raises :class:`~wsgisession.errors.SerializationError`, and a session grown past
        ``max_session_size`` :class:`~wsgisession.errors.SessionTooLargeError`, naming the key.
        """
        self._ensure()
        for name in list(self._snapshots) if key is None else [key]:
            value = self._data[name]
            if value is None or value.__class__ in _IMMUTABLE:
                continue  # it cannot have changed in place
            try:
                text = self._ctx.serializer.dumps(value)
            except (TypeError, ValueError, RecursionError) as exc:
                raise SerializationError(name, value, _reason(exc)) from exc
            before = self._snapshots.get(name)
            if text == before:
                continue
            limit = self._ctx.config.max_size
            size = self._size
            if before is None:
                size = (limit or 0) + 1  # how it was is unknown: measure, if there is a limit
            else:
                size += utf8_size(text) - utf8_size(before)
            if limit is not None and size > limit:
                size = self._exact_size()
                if size > limit:
                    where = f"the session with session[{name!r}] changed in place"
                    raise SessionTooLargeError(size, limit, where)
            if not self._needs_create and name not in self._originals:
                self._remember(name)
            self._size = size
            self._updates.add(name)
            self._snapshots[name] = text

    def __repr__(self) -> str:
        if not self._loaded:
            return "<Session (not loaded)>"
        return f"<Session keys={sorted(self._data)!r} new={self._fresh}>"

    # Lifecycle -----------------------------------------------------------------------------

    def regenerate(self) -> None:
        """Move the session to a new id and delete the old record; call it at login.

        The data is kept, the absolute deadline is not reset, and the CSRF token is replaced.
        """
        self._ensure()
        if self._origin is not None and self._replaces is None:
            self._replaces = self._origin
        self._origin = None
        self._needs_create = True
        self._removals.clear()
        self._increments.clear()
        self._data.pop(_CSRF_KEY, None)
        # A session bound to a user lives on with no data: the binding is what login made.
        self._id = self._ctx.new_id() if self._data or USER in self._meta else None

    def destroy(self) -> None:
        """End the session: its record is deleted and the cookie expired; call it at logout.

        Setting a key afterwards starts a brand-new session with a new id.
        """
        self._ensure()
        if self._origin is not None and self._replaces is None:
            self._replaces = self._origin
        self._origin = None
        self._id = None
        self._data = {}
        self._meta = {}
        self._meta_dirty = False
        self._record = None
        self._fresh = True
        self._needs_create = True
        self._updates.clear()
        self._removals.clear()
        self._increments.clear()
        self._snapshots.clear()
        self._originals.clear()

    def set_expiry(self, expiry: int | timedelta | datetime | None) -> None:
        """Give this session its own expiry; None makes the cookie end with the browser.

        * seconds (an int) or a ``timedelta``: this session's own idle timeout in place of
          ``max_age``; ``set_expiry(timedelta(days=30))`` keeps it for 30 idle days ("remember
          me"). Whole seconds count.
        * an aware ``datetime``: a fixed end. The session ends then however active it is, and
          the cookie's Max-Age counts down to it. A naive datetime is refused: Python makes
          both local (``datetime.now()``) and UTC (``datetime.utcnow()``) naive times, and a
          guess would be hours off for one of them.
        * None: the cookie ends with the browser session; on the server the idle timeout
          (``max_age``) still applies.

        Each call replaces the previous choice. ``absolute_timeout`` caps every one of them.
        Raises ConfigurationError for a timeout that is not positive or a moment not in the
        future (by the middleware's clock).
        """
        choice: dict[str, Any]
        if expiry is None:
            choice = {BROWSER: 1}
        elif isinstance(expiry, datetime):
            choice = {ENDS: self._fixed_end(expiry)}
        else:
            choice = {LIFETIME: _idle_seconds(expiry)}
        self._writable()
        meta = {k: v for k, v in self._meta.items() if k not in _EXPIRY_CHOICES}
        meta.update(choice)
        self._meta = meta
        self._meta_dirty = True

    # The user ------------------------------------------------------------------------------

    @property
    def user_id(self) -> str | None:
        """The user this session is bound to (:meth:`set_user`), or None."""
        self._ensure()
        return user_of(self._meta)

    def set_user(self, user_id: str | None) -> None:
        """Bind this session to *user_id* (at login, after :meth:`regenerate`); None unbinds.

        The binding is saved with the request's one write (in the create, for a new
        session), and the store indexes the session under the user, so that
        :meth:`user_sessions` and :meth:`revoke_other_sessions` find it. Binding the user it
        already has writes nothing.
        """
        if user_id is not None:
            check_user_id(user_id)
        self._ensure()
        if user_of(self._meta) == user_id:
            return
        if user_id is None:
            meta = dict(self._meta)
            meta.pop(USER, None)
            meta.pop(INFO, None)
        else:
            self._writable()
            meta = dict(self._meta)
            meta[USER] = user_id
            meta.pop(INFO, None)
            describe = self._ctx.describe
            info = describe(self._source) if describe is not None else None
            if info:
                try:
                    self._ctx.serializer.dumps(info)
                except (TypeError, ValueError) as exc:
                    raise SerializationError(
                        INFO, info, f"describe() must return JSON values: {exc}"
                    ) from exc
                meta[INFO] = dict(info)
        self._meta = meta
        self._meta_dirty = True

    def _stored_id(self) -> str | None:
        """The id this session's record is stored under right now, if it is stored."""
        if self._origin is not None:
            return self._origin
        if self._replaces is not None and self._record is not None:
            return self._replaces  # regenerated here: the old record lives until the end
        return None

    def _user_index(self, what: str) -> tuple[UserIndex, str]:
        self._ensure()
        if self._error is not None:
            raise self._error  # the store failed at load: nothing is known of the user
        users = self._ctx.users
        if users is None:
            raise NoUserIndexError(
                f"this session has no store behind it, so it cannot {what}; use the session "
                "a SessionMiddleware (or a framework integration) hands the request"
            )
        user = user_of(self._meta)
        if user is None:
            raise SessionError(
                f"this session is bound to no user, so it cannot {what}; call "
                "session.set_user(user_id) at login (after session.regenerate())"
            )
        return users, user

    def user_sessions(self) -> list[SessionInfo]:
        """List the live sessions of this session's user, this one marked ``current``.

        One store call. A session bound in this request is listed once it is saved.
        """
        users, user = self._user_index("list its user's sessions")
        return users.sessions(user, self._stored_id())

    def revoke_other_sessions(self) -> int:
        """End every other session of this session's user; return how many ended.

        Use it after a password change (OWASP ASVS V3.3.3). One store call; this session
        lives on.
        """
        users, user = self._user_index("end its user's other sessions")
        return users.revoke_others(user, self._stored_id())

    def revoke_session(self, handle: str) -> bool:
        """End the session of this session's user named by *handle*; return whether one was.

        The handle comes from :meth:`user_sessions`. This session's own handle destroys it
        (as :meth:`destroy` does).
        """
        users, user = self._user_index("end one of its user's sessions")
        if not isinstance(handle, str):
            return False
        current = self._stored_id()
        given = handle.encode("utf-8", "surrogatepass")
        if current is not None and hmac.compare_digest(users.handle_of(current).encode(), given):
            self.destroy()
            return True
        return users.revoke(user, handle)

    def _fixed_end(self, moment: datetime) -> float:
        """*moment* (aware) as seconds since the epoch; refused unless it is in the future."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ConfigurationError(
                f"set_expiry({moment!r}) got a naive datetime, which could be local time or UTC; "
                "give an aware one, e.g. datetime.now(timezone.utc) + timedelta(days=30)"
            )
        ends = moment.timestamp()
        now = self._ctx.clock()
        if ends <= now:
            raise ConfigurationError(
                f"set_expiry({moment.isoformat()}) is not in the future (now is "
                f"{datetime.fromtimestamp(now, timezone.utc).isoformat()}); give a later moment, "
                "or call destroy() to end the session now"
            )
        return ends

    # Flash messages and CSRF ------------------------------------------------------------------

    def flash(self, msg: Any, queue: str = "", allow_duplicate: bool = True) -> None:
        """Add *msg* to a flash queue, to be shown once on a later request."""
        key = _FLASH_PREFIX + queue
        messages = list(self.get(key) or [])
        if not allow_duplicate and msg in messages:
            return
        messages.append(msg)
        self[key] = messages

    def pop_flash(self, queue: str = "") -> list[Any]:
        """Return the messages of a flash queue and empty it."""
        messages = self.pop(_FLASH_PREFIX + queue, [])
        return list(messages)

    def peek_flash(self, queue: str = "") -> list[Any]:
        """Return the messages of a flash queue and leave them there."""
        return list(self.get(_FLASH_PREFIX + queue) or [])

    @property
    def csrf_token(self) -> str:
        """This session's CSRF token, made on first use and replaced by :meth:`regenerate`."""
        token = self.get(_CSRF_KEY)
        if not isinstance(token, str):
            token = secrets.token_urlsafe(32)
            self[_CSRF_KEY] = token
        return token

    def check_csrf_token(self, value: str | None) -> bool:
        """Tell whether *value* is this session's CSRF token, comparing in constant time."""
        token = self.get(_CSRF_KEY)
        if not isinstance(token, str) or not isinstance(value, str):
            return False
        how = "utf-8", "surrogatepass"  # every str encodes (a lone surrogate too), one to one
        return hmac.compare_digest(token.encode(*how), value.encode(*how))

    # What to write -----------------------------------------------------------------------

    def _changed_nested(self) -> dict[str, str]:
        """Mark keys whose mutable values were changed in place since they were read or set.

        Measures what they add: past ``max_session_size`` it raises SessionTooLargeError naming
        them, and nothing is written. Returns each such value's text, for the no-op check.
        """
        dumps = self._ctx.serializer.dumps
        data = self._data
        texts: dict[str, str] = {}
        grown: list[str] = []
        size = self._size
        for key, before in self._snapshots.items():
            if key in data:
                value = data[key]
                try:
                    after = dumps(value)
                except (TypeError, ValueError, RecursionError) as exc:
                    raise SerializationError(key, value, _reason(exc)) from exc
                texts[key] = after
                if after != before:
                    grown.append(key)
                    size += utf8_size(after) - utf8_size(before)
        limit = self._ctx.config.max_size
        if grown and limit is not None and size > limit:
            size = self._exact_size()
            if size > limit:
                names = ", ".join(f"session[{key!r}]" for key in grown)
                raise SessionTooLargeError(
                    size, limit, f"the session with {names} changed in place"
                )
        self._size = size
        for key in grown:
            if not self._needs_create and key not in self._originals:
                self._remember(key)  # the snapshot is how it was read
            self._updates.add(key)
        self._snapshots.clear()
        return texts

    def _drop_no_ops(self, texts: dict[str, str]) -> None:
        """Forget the changes that leave a key as it was loaded (set, then set back)."""
        data = self._data
        dumps = self._ctx.serializer.dumps
        for key, original in self._originals.items():
            if original is _UNKNOWN:
                continue
            current = data.get(key, _MISSING)
            if original.__class__ is _Text:
                if current is _MISSING or current is None or current.__class__ in _IMMUTABLE:
                    continue
                text = texts.get(key)
                if text is None:
                    text = dumps(current)
                if text != original:
                    continue
            elif current.__class__ is not original.__class__ or current != original:
                continue  # atoms are the same by type and value: 1, 1.0 and True differ
            elif current.__class__ is float and repr(current) != repr(original):
                continue  # 0.0 and -0.0
            self._updates.discard(key)
            self._removals.discard(key)
            self._increments.pop(key, None)

    def plan(self) -> Plan | None:
        """Say what the end of this request must write, or None when nothing must change."""
        if not self._loaded or self._error is not None:
            return None
        texts = self._changed_nested() if self._snapshots else None
        if self._needs_create:
            if self._id is None or not (self._data or USER in self._meta):
                if self._replaces is None:
                    return None
                # Destroyed (or emptied and regenerated): the old record goes, and the cookie
                # that named it (a record to delete can only have come from the cookie) too.
                return Plan(delete_id=self._replaces, expire_cookie=True)
            config = self._ctx.config
            now = self._ctx.clock()
            meta = dict(self._meta)
            meta.setdefault(CREATED, now)
            self._meta = meta
            expires = target_expiry(meta, now, config.max_age, config.absolute_timeout)
            return Plan(
                write_id=self._id,
                new_data=self._data,
                new_meta=meta,
                new_expires=expires,
                delete_id=self._replaces,
                set_cookie=True,
                cookie_max_age=cookie_max_age(meta, expires, now),
            )
        record = self._record
        assert record is not None and self._id is not None
        config = self._ctx.config
        now = self._ctx.clock()
        meta = self._meta
        target = target_expiry(meta, now, config.max_age, config.absolute_timeout)
        refresh = self._meta_dirty or refresh_due(target, record.expires, config.touch_interval)
        if self._originals:
            self._drop_no_ops(texts or {})
        updates = self._updates
        if not (updates or self._removals or self._increments or refresh):
            return None
        data = self._data
        # The sets and dicts are handed over as they are: the store call happens before the
        # request goes on, and nothing done to the session after start_response is saved.
        changes = Changes(
            {key: data[key] for key in updates},
            self._removals,
            self._increments,
            target if refresh else None,
            self._meta if self._meta_dirty else None,
            loaded=record,
            result=data,
        )
        return Plan(
            write_id=self._id,
            changes=changes,
            set_cookie=refresh and (self._meta_dirty or not meta.get(BROWSER)),
            cookie_max_age=cookie_max_age(meta, target if refresh else record.expires, now),
        )


class _Text(str):
    """A value as it was loaded, kept as its serialized text (not to be taken for a str value)."""

    __slots__ = ()


def _check_key(key: Any, value: Any) -> None:
    """Refuse a key that is not a str, or that UTF-8 cannot write (a lone surrogate)."""
    if not isinstance(key, str):
        raise SerializationError(
            repr(key),
            value,
            message=(
                f"session keys must be str, not {type(key).__name__}: the key {key!r} was "
                f"refused (the value is fine); use a str key, e.g. session[{str(key)!r}]"
            ),
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SerializationError(
            key,
            value,
            message=(
                f"the session key {key!r} was refused: it holds a lone surrogate "
                f"({exc.object[exc.start : exc.end]!r}), which UTF-8 cannot write, so no store "
                "or cookie could hold it; use text that UTF-8 can encode (decode input with "
                "errors='replace')"
            ),
        ) from exc


def _key_size(key: str) -> int:
    """The bytes a key adds to the session's JSON: its quoted text, a colon and a comma."""
    return utf8_size(encode_basestring(key)) + 2


def _reason(exc: BaseException) -> str:
    """Why a value cannot be serialized, in words a view's author can act on."""
    if isinstance(exc, RecursionError):
        return "it is nested too deeply to be serialized (keep it to a few dozen levels)"
    if isinstance(exc, UnicodeEncodeError):
        return (
            f"its text holds a lone surrogate ({exc.object[exc.start : exc.end]!r}), which "
            "UTF-8 cannot write (decode input with errors='replace')"
        )
    if isinstance(exc, OverflowError):
        return "the sum is too large for a float"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return (
            f"it holds an int of more than {MAX_INT_DIGITS} digits, which Python will not "
            "turn into text or read back"
        )
    return str(exc)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _idle_seconds(expiry: Any) -> int:
    """An idle timeout given as an int or a timedelta, in whole seconds; refused unless positive."""
    if isinstance(expiry, timedelta):
        seconds = math.floor(expiry.total_seconds())
        if seconds <= 0:
            raise ConfigurationError(
                f"set_expiry({expiry!r}) is not a positive idle timeout; give at least one "
                "second, e.g. timedelta(days=30), or None for a cookie that ends with the browser"
            )
        return seconds
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        raise ConfigurationTypeError(
            f"set_expiry({expiry!r}) got {a_type(expiry)}; give seconds (an int) or a timedelta "
            "for an idle timeout, an aware datetime for a fixed end, or None for a cookie that "
            "ends with the browser session"
        )
    if expiry <= 0:
        raise ConfigurationError(
            f"set_expiry({expiry!r}) is not a positive idle timeout; give at least one second, "
            "or None for a cookie that ends with the browser session"
        )
    return expiry


_EXPIRY_CHOICES: Final = frozenset((LIFETIME, BROWSER, ENDS))
_OLD_META_KEYS: Final = frozenset(OLD_META_NAMES)
_JSON = JSONSerializer()
_DETACHED = SessionContext()
_MISSING: Final = object()
#: The original of a key changed in place into something the serializer cannot hold.
_UNKNOWN: Final = object()
_MUTABLE = (dict, list)
_ATOMS = frozenset((int, bool))
#: Values that cannot change in place: kept as they are to tell a no-op write.
_IMMUTABLE = frozenset((str, int, float, bool))
