"""MemoryStore: sessions in a dict of this process, for development and tests.

Each process has its own: under gunicorn with several workers, a session created in one worker
is unknown to the others. Use SqliteStore on one machine and RedisStore or PostgresStore on many.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigurationError
from ..records import user_of
from ..serializers import Serializer, utf8_size
from .base import Changes, Record, Store, StoreStats

__all__ = ["MemoryStore"]


class _Json(str):
    """A container value (dict or list) held as its JSON text, so no request shares it."""

    __slots__ = ()


#: Values of these exact types are immutable and read back from JSON unchanged: held as is.
_SHARED = frozenset((str, int, float, bool, type(None)))


class _Entry:
    # data is never changed in place: a save builds a new dict and swaps it in, so a load can
    # copy it outside the lock. ``pairs`` is the length of the record's JSON text less one, in
    # UTF-8 bytes.
    __slots__ = ("data", "meta", "expires", "pairs", "plain", "user")

    def __init__(
        self, data: dict[str, Any], meta: dict[str, Any], expires: float, pairs: int, plain: bool
    ) -> None:
        self.data = data
        self.meta = meta
        #: The user the record is indexed under, or None.
        self.user = user_of(meta)
        self.expires = expires
        self.pairs = pairs
        #: True when no value is a container, so a plain dict copy is a private copy.
        self.plain = plain


class MemoryStore(Store):
    """Sessions in this process's memory: thread-safe, with expiry and an optional size bound.

    **Per process.** Under gunicorn with several workers each worker has its own sessions, and
    a restart loses them all. Meant for development and tests.

    A user's sessions are indexed in a dict beside the records, kept in step under the same
    lock as every write, so a revocation never misses a session moving to a new key.

    Values go through the serializer as in every other store, so what works here works there;
    strings and numbers are kept as they are (they cannot change), dicts and lists as their
    JSON text, so a request never shares a mutable object with another or with the store.

    :param max_entries: when set, the least recently used sessions are dropped beyond this many.
    :param serializer: how values become text; JSON by default.
    """

    def __init__(
        self, max_entries: int | None = None, serializer: Serializer | None = None
    ) -> None:
        super().__init__(serializer)
        if max_entries is not None and max_entries <= 0:
            raise ConfigurationError(
                f"max_entries={max_entries} must be a positive number of sessions, "
                "or None for no bound"
            )
        #: The most sessions kept at once; None for no bound.
        self.max_entries = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        #: user id → the keys of its records; changed only under the lock, with the records.
        self._users: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def _drop(self, key: str) -> _Entry | None:
        """Remove the record under *key* and its index entry; the lock must be held."""
        entry = self._entries.pop(key, None)
        if entry is not None and entry.user is not None:
            self._unindex(key, entry.user)
        return entry

    def _unindex(self, key: str, user: str) -> None:
        keys = self._users.get(user)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._users[user]

    def __len__(self) -> int:
        """Number of records held, live or not yet purged."""
        return len(self._entries)

    def load(self, key: str, now: float) -> Record | None:
        """Return a private copy of the live record under *key*, dropping it when expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires <= now:
                self._drop(key)
                return None
            if self.max_entries is not None:
                self._entries.move_to_end(key)
            stored, meta, expires, pairs, plain = (
                entry.data,
                entry.meta,
                entry.expires,
                entry.pairs,
                entry.plain,
            )
        if plain:
            data = dict(stored)
        else:
            loads = self.serializer.loads
            data = {k: loads(v) if v.__class__ is _Json else v for k, v in stored.items()}
        return Record(data, dict(meta), expires, None, pairs + 1 if pairs else 2)

    def _hold(self, value: Any) -> tuple[Any, int]:
        """Return *value* as held (itself, or a container's JSON text) and its JSON length.

        Serializing validates it as every other store would, and a container goes through
        JSON, so what works here works there (a tuple comes back a list, say).
        """
        text = self.serializer.dumps(value)
        size = len(text) if text.isascii() else utf8_size(text)
        if value.__class__ in _SHARED:
            return value, size
        return _Json(text), size

    def _length(self, held: Any) -> int:
        text = held if held.__class__ is _Json else self.serializer.dumps(held)
        return len(text) if text.isascii() else utf8_size(text)

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> bool:
        """Add a record, moving the live one it replaces; past the bound, drop the least used."""
        dumps = self.serializer.dumps
        if any(name.__class__ is not str for name in data):
            data = self.serializer.loads(dumps(dict(data)))  # keys as JSON makes them
        held: dict[str, Any] = {}
        pairs = 0
        plain = True
        for name, value in data.items():
            held[name], length = self._hold(value)
            plain = plain and held[name].__class__ is not _Json
            pairs += utf8_size(dumps(name)) + length + 2
        entry = _Entry(held, dict(meta), expires, pairs, plain)
        with self._lock:
            if replaces is not None:
                old = self._drop(replaces)
                if old is None or old.expires <= now:
                    return False  # the session ended meanwhile: it is not brought back
            self._drop(key)
            self._entries[key] = entry
            if entry.user is not None:
                self._users.setdefault(entry.user, set()).add(key)
            if self.max_entries is not None:
                while len(self._entries) > self.max_entries:
                    dropped, gone = self._entries.popitem(last=False)
                    if gone.user is not None:
                        self._unindex(dropped, gone.user)
        return True

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """Apply *changes* to the live record under *key*, under the lock; False when it is gone.

        The changes are applied to what is stored now, by :meth:`Changes.apply_to`, so
        overlapping saves of one session all land. New values are serialized before the lock
        is taken, and only the keys the changes name are measured again.
        """
        dumps = self.serializer.dumps
        meta = dict(changes.meta) if changes.meta is not None else None
        updates = changes.updates
        held: dict[str, tuple[Any, int]] = {}
        for name, value in updates.items():
            held[name] = self._hold(value)
        removals, increments = changes.removals, changes.increments
        length = self._length
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= now:
                self._drop(key)
                return False
            stored = entry.data  # never changed in place: it keeps the values before the save
            pairs = entry.pairs
            plain = entry.plain
            if removals or increments:
                data = changes.apply_to(dict(stored))
                # Each key the changes name, once (a key may be both removed and set, say).
                touched: Mapping[str, Any] = dict.fromkeys((*removals, *updates, *increments))
            else:
                # Sets alone: apply_to's rule is "each key takes its new value", done here as
                # each value goes in as held (a container as its JSON text).
                data = dict(stored)
                touched = held
            # Measure again only what changed: "name":value, is the name's share of the text.
            for name in touched:
                old = stored.get(name, _ABSENT)
                if name in held and (touched is held or data.get(name, _ABSENT) is updates[name]):
                    value, size = held[name]  # as set: a container as its JSON text
                    data[name] = value
                    plain = plain and value.__class__ is not _Json
                else:
                    value = data.get(name, _ABSENT)
                    if value is _ABSENT:
                        if old is not _ABSENT:
                            pairs -= utf8_size(dumps(name)) + 2 + length(old)
                        continue
                    size = utf8_size(dumps(value))  # a number an increment made
                if old is _ABSENT:
                    pairs += utf8_size(dumps(name)) + 2 + size
                else:
                    pairs += size - length(old)
            entry.data = data
            entry.pairs = pairs
            entry.plain = plain
            if meta is not None:
                entry.meta = meta
                user = user_of(meta)
                if user != entry.user:
                    if entry.user is not None:
                        self._unindex(key, entry.user)
                    if user is not None:
                        self._users.setdefault(user, set()).add(key)
                    entry.user = user
            if changes.expires is not None:
                entry.expires = changes.expires
        return True

    def delete(self, key: str) -> None:
        """Drop the record under *key*, if any."""
        with self._lock:
            self._drop(key)

    def user_sessions(self, user_id: str, now: float) -> list[tuple[str, Record]]:
        """Return private copies of the live records of *user_id*, under the lock."""
        with self._lock:
            keys = [key for key in self._users.get(user_id, ()) if self._entries[key].expires > now]
        found = []
        for key in keys:
            record = self.load(key, now)
            if record is not None:
                found.append((key, record))
        return found

    def revoke_user(self, user_id: str, now: float, keep: str | None = None) -> int:
        """Drop every record of *user_id* but *keep*, under the lock; return how many live."""
        with self._lock:
            keys = [key for key in self._users.get(user_id, ()) if key != keep]
            ended = 0
            for key in keys:
                entry = self._drop(key)
                if entry is not None and entry.expires > now:
                    ended += 1
        return ended

    def purge(self, now: float, progress: Callable[[int], None] | None = None) -> int:
        """Drop every expired record; return how many."""
        with self._lock:
            dead = [key for key, entry in self._entries.items() if entry.expires <= now]
            for key in dead:
                self._drop(key)
        if progress is not None:
            progress(len(dead))
        return len(dead)

    def count_expired(self, now: float) -> int:
        """Count the expired records that purge() would drop."""
        with self._lock:
            return sum(1 for entry in self._entries.values() if entry.expires <= now)

    def stats(self, now: float) -> StoreStats:
        """Count the live records and the bytes of their data as JSON."""
        with self._lock:
            live = [entry.data for entry in self._entries.values() if entry.expires > now]
        loads, dumps = self.serializer.loads, self.serializer.dumps
        size = 0
        for held in live:
            data = {k: loads(v) if v.__class__ is _Json else v for k, v in held.items()}
            size += len(dumps(data).encode("utf-8"))
        return StoreStats(len(live), size)


_ABSENT: Any = object()
