"""The write policy: what the end of a request must write, as data and pure rules.

A :class:`Plan` is what :meth:`Session.plan <wsgisession.session.Session.plan>` hands the core
at the end of a request: which record to create, change or delete, and what the cookie must
do. The functions beside it are the rules the plan is made from (expiry, throttled refresh,
the cookie's Max-Age); they read a session's bookkeeping and the clock, nothing else, so they
know nothing of sessions, stores or HTTP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .records import Changes

__all__ = [
    "BROWSER",
    "CREATED",
    "ENDS",
    "LIFETIME",
    "OLD_META_NAMES",
    "Plan",
    "cookie_max_age",
    "past_deadline",
    "read_meta",
    "refresh_due",
    "target_expiry",
]

# Keys of the session's own bookkeeping in Record.meta: stored with every session and in every
# CookieStore cookie, so someone reading a row or a decrypted cookie sees what each one is.
#: Creation time in seconds since the epoch, for absolute_timeout (kept across regenerate).
CREATED: Final = "created"
#: The idle timeout in seconds that set_expiry(seconds or timedelta) gave this session.
LIFETIME: Final = "lifetime"
#: Present (1) after set_expiry(None): the cookie ends with the browser session.
BROWSER: Final = "browser_session"
#: The fixed end, in seconds since the epoch, that set_expiry(datetime) gave this session.
ENDS: Final = "ends"

#: The spellings of records written by 0.1.0, and the names they stand for.
OLD_META_NAMES: Final = {"c": CREATED, "t": LIFETIME, "b": BROWSER}
_OLD_KEYS: Final = frozenset(OLD_META_NAMES)


def read_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """*meta* as a stored record holds it, with the old one-letter names read as the new ones.

    Records and CookieStore cookies written before the names became readable keep working:
    their ``"c"``, ``"t"`` and ``"b"`` are read as ``created``, ``lifetime`` and
    ``browser_session`` (a new name, where both are present, wins). *meta* itself is returned
    when it holds no old name, which is every record written since.
    """
    if _OLD_KEYS.isdisjoint(meta):
        return meta
    renamed: dict[str, Any] = {}
    for name, value in meta.items():
        new = OLD_META_NAMES.get(name)
        if new is None:
            renamed[name] = value
        else:
            renamed.setdefault(new, value)
    return renamed


@dataclass(slots=True)  # not frozen: built on every saving request, and frozen costs µs
class Plan:
    """What the end of a request must do to the store and the cookie.

    Exactly one of :attr:`new_data` (a record to create) and :attr:`changes` (a record to
    update) is set when :attr:`write_id` is; neither when the plan only deletes.
    """

    #: The id whose record is written (created or updated), or None.
    write_id: str | None = None
    #: For a new record: its whole data.
    new_data: Mapping[str, Any] | None = None
    #: For an existing record: the changes to apply.
    changes: Changes | None = None
    #: For a new record: the session's bookkeeping to store with it.
    new_meta: Mapping[str, Any] | None = None
    #: For a new record: its expiry, in seconds since the epoch.
    new_expires: float = 0.0
    #: An id whose record must go: destroyed, or replaced by ``write_id`` (regenerate).
    delete_id: str | None = None
    #: True when the cookie must be (re)sent with ``write_id``.
    set_cookie: bool = False
    #: True when the cookie must be expired (destroy without a new session).
    expire_cookie: bool = False
    #: The cookie's Max-Age, or None for a cookie that ends with the browser session.
    cookie_max_age: int | None = None


def past_deadline(meta: Mapping[str, Any], now: float, absolute_timeout: int | None) -> bool:
    """Tell whether a session created as *meta* says is past its absolute deadline at *now*."""
    created = meta.get(CREATED)
    return (
        absolute_timeout is not None
        and isinstance(created, (int, float))
        and now >= created + absolute_timeout
    )


def target_expiry(
    meta: Mapping[str, Any], now: float, max_age: int, absolute_timeout: int | None
) -> float:
    """The expiry a write at *now* gives: the idle timeout from now, capped by the deadline.

    A session with a fixed end (``set_expiry(datetime)``) expires then, however it is used.
    """
    ends = meta.get(ENDS)
    if ends is not None and isinstance(ends, (int, float)) and not isinstance(ends, bool):
        expires = float(ends)  # the fixed end of set_expiry(datetime); rare, so tested last
    else:
        lifetime = meta.get(LIFETIME)
        if not (isinstance(lifetime, int) and lifetime > 0):
            lifetime = max_age
        expires = now + lifetime
    if absolute_timeout is not None:
        created = meta.get(CREATED)
        if isinstance(created, (int, float)):
            expires = min(expires, created + absolute_timeout)
    return expires


def refresh_due(target: float, stored_expires: float, touch_interval: int) -> bool:
    """Tell whether moving the stored expiry to *target* is worth a write (the throttle)."""
    return target - stored_expires >= touch_interval


def cookie_max_age(meta: Mapping[str, Any], expires: float, now: float) -> int | None:
    """The cookie's Max-Age for a session expiring at *expires*; None for a browser session."""
    if meta.get(BROWSER):
        return None
    return max(0, math.floor(expires - now))
