"""wsgisession: server-side sessions for any WSGI application.

::

    from wsgisession import SessionMiddleware, SqliteStore

    app = SessionMiddleware(app, store=SqliteStore("sessions.db"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .csrf import CSRFMiddleware, check_csrf
from .errors import (
    BadCookieError,
    ConfigurationError,
    SerializationError,
    SessionError,
    SessionNotInstalledError,
    SessionTooLargeError,
    StoreError,
    StoreUnavailableError,
)
from .middleware import SessionMiddleware, get_session
from .serializers import JSONSerializer, Serializer
from .session import Session
from .stores import ClientSideStore, MemoryStore, SqliteStore, Store, StoreStats, store_from_url

if TYPE_CHECKING:
    from .stores.cookie import CookieStore

__version__ = "0.1.0"

__all__ = [
    "BadCookieError",
    "CSRFMiddleware",
    "ClientSideStore",
    "ConfigurationError",
    "CookieStore",
    "JSONSerializer",
    "MemoryStore",
    "SerializationError",
    "Serializer",
    "Session",
    "SessionError",
    "SessionMiddleware",
    "SessionNotInstalledError",
    "SessionTooLargeError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreStats",
    "StoreUnavailableError",
    "__version__",
    "check_csrf",
    "get_session",
    "store_from_url",
]


def __getattr__(name: str) -> Any:
    # CookieStore needs the optional 'cryptography' package: loaded on first use only.
    if name == "CookieStore":
        from .stores.cookie import CookieStore

        return CookieStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
