"""Session: the dict-like object a view finds in ``environ["wsgisession"]``.

It loads lazily (the first access asks the store, through a loader the middleware gives it),
records which keys were set and which removed, notices changes inside nested values, and owns
the lifecycle: expiry, throttled refresh, ``regenerate()``, ``destroy()`` and flash messages.
It knows nothing of WSGI, cookies or stores: :meth:`Session.plan` says what must be written
(a :class:`~wsgisession.policy.Plan`), and the core (:mod:`wsgisession.core`) does it.
"""

from __future__ import annotations

import hmac
import operator
import secrets
import time
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .errors import ConfigurationError, SerializationError, SessionTooLargeError, StoreError
from .policy import (
    BROWSER,
    CREATED,
    LIFETIME,
    Plan,
    cookie_max_age,
    past_deadline,
    refresh_due,
    target_expiry,
)
from .records import Changes, Record
from .serializers import JSONSerializer, Serializer

__all__ = ["Session", "SessionConfig", "SessionContext"]

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
        if self.on_store_error not in ("error", "continue"):
            raise ConfigurationError(
                f"on_store_error={self.on_store_error!r} is unknown; use 'error' (a 503) or "
                "'continue' (an empty session that is not saved)"
            )
        if not isinstance(self.max_age, int) or isinstance(self.max_age, bool) or self.max_age <= 0:
            raise ConfigurationError(
                f"max_age={self.max_age!r} must be a positive number of seconds (default 1209600)"
            )
        if not isinstance(self.touch_interval, int) or self.touch_interval < 0:
            raise ConfigurationError(
                f"touch_interval={self.touch_interval!r} must be 0 or more seconds "
                "(default max_age // 10)"
            )
        if self.max_size is not None and (not isinstance(self.max_size, int) or self.max_size <= 0):
            raise ConfigurationError(
                f"max_session_size={self.max_size!r} must be a positive number of bytes or None"
            )
        if self.absolute_timeout is not None and (
            not isinstance(self.absolute_timeout, int) or self.absolute_timeout <= 0
        ):
            raise ConfigurationError(
                f"absolute_timeout={self.absolute_timeout!r} must be a positive number of seconds "
                "or None"
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
        limit = self._ctx.config.absolute_timeout
        if limit is not None and past_deadline(record.meta, self._ctx.clock(), limit):
            self._replaces = session_id  # dead by absolute_timeout: delete it at the end
            return
        self._data = record.data
        self._size = record.size
        self._record = record
        self._meta = record.meta
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
        if not isinstance(key, str):
            raise SerializationError(
                repr(key),
                value,
                message=(
                    f"session keys must be str, not {type(key).__name__}: the key {key!r} was "
                    f"refused (the value is fine); use a str key, e.g. session[{str(key)!r}]"
                ),
            )
        if value is None or value.__class__ in _ATOMS:
            size = len(repr(value))  # as long as its JSON (null, true, 42); nothing to check
        else:
            try:
                size = len(self._ctx.serializer.dumps(value))
            except (TypeError, ValueError) as exc:
                raise SerializationError(key, value, str(exc)) from exc
        if not self._loaded:
            self._load()
        if self._id is None:
            self._id = self._ctx.new_id()  # about to hold data, so the session needs an id
        limit = self._ctx.config.max_size
        if limit is not None:
            # A running estimate (the stored size plus what this request set) keeps the common
            # case free; only past the limit is the whole session measured.
            added = size + len(key) + 4
            self._size += added
            if self._size > limit:
                self._measure(key, value, added, limit)
        self._data[key] = value
        self._updates.add(key)
        self._removals.discard(key)
        self._increments.pop(key, None)
        self._snapshots.pop(key, None)

    def _measure(self, key: str, value: Any, added: int, limit: int) -> None:
        """Measure the session with *value* set exactly; refuse it past *limit*, unchanged."""
        trial = dict(self._data)
        trial[key] = value
        exact = len(self._ctx.serializer.dumps(trial).encode("utf-8"))
        if exact > limit:
            self._size -= added
            raise SessionTooLargeError(exact, limit, f"the session with session[{key!r}] set")
        self._size = exact

    def set(self, key: str, value: Any) -> None:
        """Set *key* to *value* (the same as ``session[key] = value``)."""
        self[key] = value

    def __delitem__(self, key: str) -> None:
        if not self._loaded:
            self._load()
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
        if not isinstance(by, (int, float)) or isinstance(by, bool):
            raise SerializationError(key, by, "increment() takes an int or a float")
        current = self.get(key, 0)
        if not isinstance(current, (int, float)) or isinstance(current, bool):
            current = 0
        value: int | float = current + by
        try:
            self._ctx.serializer.dumps(value)
        except (TypeError, ValueError) as exc:
            raise SerializationError(key, value, str(exc)) from exc
        self._writable()
        self._data[key] = value
        self._snapshots.pop(key, None)
        if self._needs_create or key in self._updates or key in self._removals:
            # A new record, or a key set or removed here: the value is exact.
            self._removals.discard(key)
            self._updates.add(key)
        else:
            self._increments[key] = self._increments.get(key, 0) + by
        return value

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
        self._id = self._ctx.new_id() if self._data else None

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
        self._record = None
        self._fresh = True
        self._needs_create = True
        self._updates.clear()
        self._removals.clear()
        self._increments.clear()
        self._snapshots.clear()

    def set_expiry(self, seconds: int | None) -> None:
        """Give this session its own idle timeout; None makes the cookie end with the browser.

        Use it for "remember me": ``set_expiry(30 * 86400)`` keeps the session for 30 idle days.
        """
        if seconds is not None and (
            not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0
        ):
            raise ConfigurationError(
                f"set_expiry({seconds!r}): give a positive number of seconds, or None for a "
                "cookie that ends with the browser session"
            )
        self._writable()
        meta = dict(self._meta)
        meta.pop(LIFETIME, None)
        meta.pop(BROWSER, None)
        if seconds is None:
            meta[BROWSER] = 1
        else:
            meta[LIFETIME] = seconds
        self._meta = meta
        self._meta_dirty = True

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

    def _changed_nested(self) -> None:
        """Mark keys whose mutable values were changed in place since they were read."""
        dumps = self._ctx.serializer.dumps
        for key, before in self._snapshots.items():
            if key in self._data:
                try:
                    after = dumps(self._data[key])
                except (TypeError, ValueError) as exc:
                    raise SerializationError(key, self._data[key], str(exc)) from exc
                if after != before:
                    self._updates.add(key)
        self._snapshots.clear()

    def plan(self) -> Plan | None:
        """Say what the end of this request must write, or None when nothing must change."""
        if not self._loaded or self._error is not None:
            return None
        if self._snapshots:
            self._changed_nested()
        if self._needs_create:
            if self._id is None or not self._data:
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


_JSON = JSONSerializer()
_DETACHED = SessionContext()
_MISSING: Final = object()
_MUTABLE = (dict, list)
_ATOMS = frozenset((int, bool))
