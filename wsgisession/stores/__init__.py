"""Session stores, and store_from_url() to build one from a URL.

Drivers are imported lazily: ``RedisStore`` needs ``wsgisession[redis]``, ``PostgresStore``
needs ``wsgisession[postgres]`` and ``CookieStore`` needs ``wsgisession[cookie]``, but importing
this package needs none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Changes, ClientSideStore, Record, Store, StoreStats
from .memory import MemoryStore
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .cookie import CookieStore

__all__ = [
    "Changes",
    "ClientSideStore",
    "CookieStore",
    "MemoryStore",
    "Record",
    "SqliteStore",
    "Store",
    "StoreStats",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    # Stores with optional drivers load on first use, so this package imports without them.
    if name == "CookieStore":
        from .cookie import CookieStore

        return CookieStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_from_url(url: str, **options: Any) -> Store:
    """Build a store from a URL: ``memory://``, ``sqlite:///relative.db``, ``sqlite:////abs.db``.

    Extra keyword *options* go to the store's constructor.
    """
    from ..errors import ConfigurationError

    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"{url!r} is not a store URL; use memory://, sqlite:///path.db, redis://host:6379/0 "
            "or postgresql://user@host/db"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(
                f"{url!r} names no file; use sqlite:///relative.db or sqlite:////absolute/path.db"
            )
        return SqliteStore(rest[1:], **options)
    raise ConfigurationError(
        f"{url!r} has an unknown scheme {scheme!r}; use memory://, sqlite://, redis:// or "
        "postgresql://"
    )
