"""Session stores, and store_from_url() to build one from a URL.

Drivers are imported lazily: ``RedisStore`` needs ``sessions-wsgi[redis]``, ``PostgresStore``
needs ``sessions-wsgi[postgres]`` and ``CookieStore`` needs ``sessions-wsgi[cookie]``, but importing
this package needs none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import Changes, ClientSideStore, Record, Store, StoreStats
from .memory import MemoryStore
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .cookie import CookieStore
    from .postgres import PostgresStore
    from .redis import RedisStore

__all__ = [
    "Changes",
    "ClientSideStore",
    "CookieStore",
    "MemoryStore",
    "PostgresStore",
    "Record",
    "RedisStore",
    "SqliteStore",
    "Store",
    "StoreStats",
    "store_from_url",
]


#: The URL schemes of :class:`RedisStore`: one server, Redis Cluster, or Sentinel.
REDIS_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)

_LAZY = {"RedisStore": ".redis", "PostgresStore": ".postgres", "CookieStore": ".cookie"}


def __getattr__(name: str) -> Any:
    """Import a store with an optional driver only when it is asked for."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_from_url(url: str, **options: Any) -> Store:
    """Build a store from a URL.

    ``memory://``; ``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``;
    ``redis://host:6379/0``, ``rediss://`` (TLS), ``unix:///path/redis.sock``,
    ``redis+cluster://host:port,host:port/`` (Redis Cluster) or
    ``redis+sentinel://host:26379,host:26379/service?db=0`` (Sentinel) for :class:`RedisStore`;
    ``postgresql://user@host:5432/db`` (or ``postgres://``) for :class:`PostgresStore`. Extra
    keyword *options* go to the store's constructor.
    """
    from ..errors import ConfigurationError
    from ._support import redact_url

    shown = redact_url(url) if isinstance(url, str) else url  # messages never show a password
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"{shown!r} is not a store URL; use memory://, sqlite:///path.db, redis://host:6379/0 "
            "or postgresql://user@host/db"
        )
    scheme = scheme.lower()
    if scheme == "memory":
        return MemoryStore(**options)
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ConfigurationError(
                f"{shown!r} names no file; use sqlite:///relative.db or sqlite:////absolute/path.db"
            )
        return SqliteStore(rest[1:], **options)
    # The server part, past any user:password@ (redis://:password@ alone names no server).
    server = rest.rpartition("@")[2].split("/", 1)[0].split("?", 1)[0]
    if scheme in REDIS_SCHEMES:
        if not server and not (scheme == "unix" and rest.strip("/")):
            raise ConfigurationError(
                f"{shown!r} names no server; use redis://host:6379/0, unix:///path/redis.sock, "
                "redis+cluster://host:port,host:port/ or redis+sentinel://host:26379/service"
            )
        from .redis import RedisStore

        return RedisStore(url, **options)
    if scheme in ("postgresql", "postgres"):
        if not rest.strip("/"):
            raise ConfigurationError(
                f"{shown!r} names no server; use postgresql://user@host:5432/dbname"
            )
        from .postgres import PostgresStore

        return PostgresStore(url, **options)
    raise ConfigurationError(
        f"{shown!r} has an unknown scheme {scheme!r}; use memory://, sqlite://, redis://, "
        "rediss://, unix://, redis+cluster://, redis+sentinel:// or postgresql://"
    )
