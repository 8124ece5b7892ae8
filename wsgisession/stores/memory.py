"""MemoryStore: sessions in a dict of this process, for development and tests.

Each process has its own: under gunicorn with several workers, a session created in one worker
is unknown to the others. Use SqliteStore on one machine and RedisStore or PostgresStore on many.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..serializers import Serializer
from .base import Changes, Record, Store, StoreStats, apply_changes

__all__ = ["MemoryStore"]


class _Entry:
    # data is JSON text, so no request shares mutable values with another; meta is the
    # session's own small flat dict of numbers, kept as a dict and copied on the way out.
    __slots__ = ("data", "meta", "expires", "version")

    def __init__(self, data: str, meta: dict[str, Any], expires: float, version: int) -> None:
        self.data = data
        self.meta = meta
        self.expires = expires
        self.version = version


class MemoryStore(Store):
    """Sessions in this process's memory: thread-safe, with expiry and an optional size bound.

    **Per process.** Under gunicorn with several workers each worker has its own sessions, and
    a restart loses them all. Meant for development and tests.

    Values are kept as JSON text, as every other store keeps them, so what works here works
    there, and a request never shares mutable objects with another.

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
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of records held, live or not yet purged."""
        return len(self._entries)

    def load(self, key: str, now: float) -> Record | None:
        """Return the live record under *key*, dropping it when it has expired."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.expires <= now:
                del self._entries[key]
                return None
            if self.max_entries is not None:
                self._entries.move_to_end(key)
            text, meta, expires, version = entry.data, entry.meta, entry.expires, entry.version
        data = self.decode(key, text)
        if not isinstance(data, dict):
            return None
        return Record(data, dict(meta), expires, version, len(text))

    def create(
        self,
        key: str,
        data: Mapping[str, Any],
        meta: Mapping[str, Any],
        expires: float,
        now: float,
        replaces: str | None = None,
    ) -> None:
        """Add a record, dropping the one it replaces and, past the bound, the least used."""
        dumps = self.serializer.dumps
        entry = _Entry(dumps(_as_dict(data)), dict(meta), expires, 0)
        with self._lock:
            if replaces is not None:
                self._entries.pop(replaces, None)
            self._entries[key] = entry
            if self.max_entries is not None:
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)

    def save(self, key: str, changes: Changes, now: float) -> bool:
        """Apply *changes* to the live record under *key*; False when it is gone."""
        dumps = self.serializer.dumps
        meta = dict(changes.meta) if changes.meta is not None else None
        base = changes.base
        # Optimistic path: serialize the request's whole view outside the lock, and use it
        # when nobody saved in between; otherwise merge the changes into what is stored.
        whole = dumps(_as_dict(changes.data)) if base is not None else None
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is None or entry.expires <= now:
                    self._entries.pop(key, None)
                    return False
                if whole is not None and base is not None and entry.version == base.version:
                    self._commit(entry, whole, meta, changes.expires)
                    return True
                text, version = entry.data, entry.version
            current = self.decode(key, text)
            merged = dumps(apply_changes(current if isinstance(current, dict) else {}, changes))
            with self._lock:
                entry = self._entries.get(key)
                if entry is None or entry.expires <= now:
                    self._entries.pop(key, None)
                    return False
                if entry.version == version:
                    self._commit(entry, merged, meta, changes.expires)
                    return True
            whole = None  # somebody saved again between our read and write: merge once more

    @staticmethod
    def _commit(
        entry: _Entry, data: str, meta: dict[str, Any] | None, expires: float | None
    ) -> None:
        entry.data = data
        if meta is not None:
            entry.meta = meta
        if expires is not None:
            entry.expires = expires
        entry.version += 1

    def delete(self, key: str) -> None:
        """Drop the record under *key*, if any."""
        with self._lock:
            self._entries.pop(key, None)

    def purge(self, now: float) -> int:
        """Drop every expired record; return how many."""
        with self._lock:
            dead = [key for key, entry in self._entries.items() if entry.expires <= now]
            for key in dead:
                del self._entries[key]
        return len(dead)

    def stats(self, now: float) -> StoreStats:
        """Count the live records and the bytes of their data."""
        with self._lock:
            live = [entry for entry in self._entries.values() if entry.expires > now]
        return StoreStats(len(live), sum(len(entry.data.encode("utf-8")) for entry in live))


def _as_dict(data: Mapping[str, Any]) -> dict[str, Any]:
    """*data* as a dict for the JSON encoder, copied only when it is not one already."""
    return data if type(data) is dict else dict(data)
