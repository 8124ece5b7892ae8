"""The two values that pass between a session and a store: a stored Record and a request's Changes.

They live below both :mod:`wsgisession.session` and :mod:`wsgisession.stores`, so neither of
those has to import the other. :meth:`Changes.apply_to` is the one merge rule: every store's own
merge (in Python, in Redis's Lua, in PostgreSQL's SQL) must give its result, and the store
contract in :mod:`wsgisession.testing` checks that on generated records and changes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import UserIdError

__all__ = ["INFO", "USER", "Changes", "Record", "add_amount", "check_user_id", "user_of"]

# The two keys of a record's meta that stores read: the bound user, for the user → sessions
# index every server store keeps, and the client's description shown in a user's session list.
#: The user id the session is bound to (``session.set_user()``), a non-empty str.
USER: Final = "user"
#: The client's description (the middleware's ``describe`` hook), a dict.
INFO: Final = "info"

#: Python turns ints of more than this many digits to text and back only on request
#: (``sys.set_int_max_str_digits``), so no store could write or read such a result.
MAX_INT_DIGITS = 4300
_INT_BOUND = 10**MAX_INT_DIGITS


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


def user_of(meta: Mapping[str, Any] | None) -> str | None:
    """The user id a record's *meta* binds it to, or None: what every store indexes."""
    if not meta:
        return None
    user = meta.get(USER)
    return user if user.__class__ is str and user else None


def check_user_id(user_id: Any, where: str = "set_user") -> str:
    """Return *user_id* when it is a non-empty str, else raise
    :class:`~wsgisession.errors.UserIdError` naming *where* it was given."""
    if not isinstance(user_id, str):
        raise UserIdError(
            f"{where}() takes the user id as a non-empty str, not {type(user_id).__name__}; "
            f"convert it first, e.g. {where}(str(user.pk))"
        )
    if not user_id:
        unbind = " (or None to unbind the session)" if where == "set_user" else ""
        raise UserIdError(
            f"{where}() got an empty user id; give the user's id as a non-empty str{unbind}"
        )
    return user_id


def add_amount(current: Any, amount: int | float) -> int | float | None:
    """Return what an increment by *amount* makes of *current*, or None when nothing can hold it.

    A *current* that is not a number (missing, a string, a list, ``True``) counts as 0. Two ints
    add exactly, whatever their size; with a float on either side the sum is a float (IEEE 754,
    as Python adds). None means JSON cannot hold the sum: a float that overflows to infinity (or
    an int too large to be a float), or an int of more than ``MAX_INT_DIGITS`` (4300) digits.
    """
    kind = current.__class__  # the common cases first; bool's class is not int
    if kind is not int and kind is not float and not _is_number(current):
        current = 0
    try:
        result = current + amount
    except OverflowError:  # an int too large to become a float, added to a float
        return None
    if result.__class__ is float:
        return result if math.isfinite(result) else None
    return result if abs(result) < _INT_BOUND else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Not frozen: a frozen dataclass costs about 2 µs more to build, once per saving request.
# Stores treat it as read-only all the same.
@dataclass(slots=True)
class Changes:
    """What one request did to an existing session: the keys it set and the keys it removed.

    Stores apply these to whatever the record holds *now*, never the whole session as the
    request saw it, so two overlapping requests that change different keys both land. How they
    apply is :meth:`apply_to`, and every store must give its result.
    """

    #: Keys set or changed in this request, with their new values.
    updates: Mapping[str, Any] = field(default_factory=dict)
    #: Keys removed in this request; a removed key stays removed.
    removals: Set[str] = frozenset()
    #: Amounts to add to numeric keys, atomically in the store (a missing or non-numeric
    #: value counts as 0): ``session.increment()``.
    increments: Mapping[str, int | float] = field(default_factory=dict)
    #: The new expiry in seconds since the epoch, or None to keep the stored one.
    expires: float | None = None
    #: New session metadata to store, or None to keep the stored one.
    meta: Mapping[str, Any] | None = None
    #: The record as this request loaded it (with its ``version``), for stores that update
    #: optimistically: when the stored version is still that one, ``result`` is the outcome.
    loaded: Record | None = None
    #: The whole session data as this request sees it after the changes: what
    #: :meth:`apply_to` gives when applied to ``loaded.data`` as it was loaded.
    result: Mapping[str, Any] = field(default_factory=dict)

    def apply_to(self, data: dict[str, Any]) -> dict[str, Any]:
        """Apply these changes to *data* in place and return it: the merge rule of every store.

        In this order: each key in ``removals`` goes (a missing key is no error); each key in
        ``updates`` is set, so a key both removed and set ends set; each key in ``increments``
        gets its amount added to the value it has after that, by :func:`add_amount`. An
        increment JSON cannot hold leaves its key as it was.
        """
        for name in self.removals:
            data.pop(name, None)
        if self.updates:
            data.update(self.updates)
        for name, amount in self.increments.items():
            current = data.get(name)
            if current.__class__ is int and amount.__class__ is int:  # a counter: inline
                total = current + amount
                if abs(total) < _INT_BOUND:
                    data[name] = total
                continue
            result = add_amount(current, amount)
            if result is not None:
                data[name] = result
        return data
