"""The two values that pass between a session and a store: a stored Record and a request's Changes.

They live below both :mod:`wsgisession.session` and :mod:`wsgisession.stores`, so neither of
those has to import the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Changes", "Record"]


@dataclass(slots=True)
class Record:
    """One stored session as a store hands it back."""

    #: The application's keys and values.
    data: dict[str, Any]
    #: The session's own bookkeeping (creation time, expiry override); opaque to stores.
    meta: dict[str, Any]
    #: Seconds since the epoch after which the record is dead.
    expires: float
    #: Anything the store wants back at save time, e.g. a row version for optimistic updates.
    version: Any = None
    #: The size of the stored data in bytes, when the store knows it cheaply (0 otherwise);
    #: the session uses it to enforce its size limit without serializing everything again.
    size: int = 0


# Not frozen: a frozen dataclass costs about 2 µs more to build, once per saving request.
# Stores treat it as read-only all the same.
@dataclass(slots=True)
class Changes:
    """What one request did to an existing session: the keys it set and the keys it removed.

    Stores apply these to whatever the record holds *now*, never the whole session as the
    request saw it, so two overlapping requests that change different keys both land.
    """

    #: Keys set or changed in this request, with their new values.
    updates: Mapping[str, Any] = field(default_factory=dict)
    #: Keys removed in this request; a removed key stays removed.
    removals: Set[str] = frozenset()
    #: Amounts to add to numeric keys, atomically in the store (a missing or non-numeric
    #: value counts as 0): ``session.increment()``. A key is never in both this and updates.
    increments: Mapping[str, int | float] = field(default_factory=dict)
    #: The new expiry in seconds since the epoch, or None to keep the stored one.
    expires: float | None = None
    #: New session metadata to store, or None to keep the stored one.
    meta: Mapping[str, Any] | None = None
    #: The record as this request loaded it (with its ``version``), for stores that update
    #: optimistically: when the stored version is still that one, ``data`` is the whole result.
    base: Record | None = None
    #: The whole session data as this request sees it after the changes.
    data: Mapping[str, Any] = field(default_factory=dict)
