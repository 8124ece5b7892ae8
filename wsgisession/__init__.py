"""wsgisession: server-side sessions for any WSGI application.

::

    from wsgisession import SessionMiddleware, SqliteStore

    app = SessionMiddleware(app, store=SqliteStore("sessions.db"))
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from .csrf import CSRFMiddleware, check_csrf
from .errors import (
    ConfigurationError,
    ConfigurationTypeError,
    MissingDriverError,
    NoUserIndexError,
    SerializationError,
    SessionError,
    SessionNotInstalledError,
    SessionTooLargeError,
    StoreError,
    StoreUnavailableError,
    UserIdError,
)
from .middleware import SessionMiddleware, get_session
from .serializers import JSONSerializer, Serializer, TaggedJSONSerializer
from .session import Session, SessionInfo
from .stores import ClientSideStore, MemoryStore, SqliteStore, Store, StoreStats, store_from_url
from .users import revoke_user, user_sessions

if TYPE_CHECKING:
    from .stores.cookie import CookieStore
    from .stores.postgres import PostgresStore
    from .stores.redis import RedisStore

__version__ = "0.1.0"

__all__ = [
    "CSRFMiddleware",
    "ClientSideStore",
    "ConfigurationError",
    "ConfigurationTypeError",
    "CookieStore",
    "JSONSerializer",
    "MemoryStore",
    "MissingDriverError",
    "NoUserIndexError",
    "PostgresStore",
    "RedisStore",
    "SerializationError",
    "Serializer",
    "Session",
    "SessionError",
    "SessionInfo",
    "SessionMiddleware",
    "SessionNotInstalledError",
    "SessionTooLargeError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreStats",
    "StoreUnavailableError",
    "TaggedJSONSerializer",
    "UserIdError",
    "__version__",
    "check_csrf",
    "get_session",
    "revoke_user",
    "store_from_url",
    "user_sessions",
]


def __getattr__(name: str) -> Any:
    """Import the stores with optional drivers when asked for: ``import wsgisession``
    needs WebOb alone."""
    if name in ("RedisStore", "PostgresStore", "CookieStore"):
        from . import stores

        return getattr(stores, name)
    if name == "BadCookieError":  # 0.1.0 exported it, but nothing ever raised it
        warnings.warn(
            "wsgisession.BadCookieError is deprecated and will be removed: nothing raises it (a "
            "bad cookie gives a fresh empty session); remove it from your except clauses",
            DeprecationWarning,
            stacklevel=2,
        )
        from .errors import BadCookieError

        return BadCookieError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
