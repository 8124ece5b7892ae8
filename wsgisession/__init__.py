"""wsgisession: server-side sessions for any WSGI application.

::

    from wsgisession import SessionMiddleware, SqliteStore

    app = SessionMiddleware(app, store=SqliteStore("sessions.db"))
"""

from __future__ import annotations

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
from .stores import MemoryStore, SqliteStore, Store, StoreStats, store_from_url

__version__ = "0.1.0"

__all__ = [
    "BadCookieError",
    "ConfigurationError",
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
    "get_session",
    "store_from_url",
]
